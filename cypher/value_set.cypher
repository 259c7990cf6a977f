// $rows: [{org, flag, value, sealed, actor}], at most one row per (org, flag): the batch's last value;
// sealed true or null (null removes the property: unsealed values, the common case, carry none).
UNWIND $rows AS row
MATCH (o:Org {id: row.org})
MATCH (f:Flag {name: row.flag})
MERGE (o)-[s:SET]->(f)
SET s.value = row.value, s.sealed = row.sealed, s.updated_at = datetime(), s.updated_by = row.actor

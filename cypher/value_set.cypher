// $rows: [{org, flag, value, actor}], at most one row per (org, flag): the batch's last value.
UNWIND $rows AS row
MATCH (o:Org {id: row.org})
MATCH (f:Flag {name: row.flag})
MERGE (o)-[s:SET]->(f)
SET s.value = row.value, s.updated_at = datetime(), s.updated_by = row.actor

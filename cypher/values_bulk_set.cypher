// $rows: [{org, value, sealed}]: each org's own value of $flag (sealed: true or null).
MATCH (f:Flag {name: $flag})
UNWIND $rows AS row
MATCH (o:Org {id: row.org})
MERGE (o)-[s:SET]->(f)
SET s.value = row.value, s.sealed = row.sealed, s.updated_at = datetime(), s.updated_by = $actor

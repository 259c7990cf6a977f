MATCH (o:Org {id: $org})
MATCH (f:Flag {name: $flag})
MERGE (o)-[s:SET]->(f)
SET s.value = $value, s.sealed = $sealed, s.updated_at = datetime(), s.updated_by = $actor

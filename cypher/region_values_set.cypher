// $values: [{org, flag, value, sealed, at, actor}]: the org's own value, as stored upstream
// (sealed: true or null). A
// flag the local catalog has not synced yet gets an inactive node, as a retired flag
// keeps its values; the catalog sync completes it when the flag is in flags.json.
UNWIND $values AS v
MATCH (o:Org {id: v.org})
MERGE (f:Flag {name: v.flag})
  ON CREATE SET f.active = false
MERGE (o)-[s:SET]->(f)
SET s.value = v.value, s.sealed = v.sealed, s.updated_at = coalesce(datetime(v.at), datetime()), s.updated_by = v.actor
RETURN count(s) AS applied

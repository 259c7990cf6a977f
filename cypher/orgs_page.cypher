// One page of orgs with id above $after, in id order (a range seek on the unique index, which
// also gives the order), each with its parent and its own values as stored, with the flag's
// type (so a region can show them as the API does) and times as RFC 3339 text, as one
// collected list. Read by GET /v1/snapshot and by the online export.
MATCH (o:Org) WHERE o.id > $after
WITH o ORDER BY o.id LIMIT $limit
OPTIONAL MATCH (p:Org)-[:PARENT_OF]->(o)
RETURN collect([o.id, p.id, COLLECT {
  MATCH (o)-[s:SET]->(f:Flag)
  RETURN [f.name, s.value, f.type, toString(s.updated_at), s.updated_by, s.sealed]
}]) AS rows

// One page of the export: orgs with id above $after in id order (a range seek on the
// unique index, which also gives the order), each with its parent and its own values,
// as one collected list. Values keep their stored type; times as RFC 3339 text.
MATCH (o:Org) WHERE o.id > $after
WITH o ORDER BY o.id LIMIT $limit
OPTIONAL MATCH (p:Org)-[:PARENT_OF]->(o)
RETURN collect([o.id, p.id, COLLECT {
  MATCH (o)-[s:SET]->(f:Flag)
  RETURN [f.name, s.value, toString(s.updated_at), s.updated_by, coalesce(s.sealed, false)]
}]) AS rows

// The region's own orgs with id in ($after, $upto] ($upto null: no upper bound), each
// with its parent and own values as stored: compared with a snapshot page on reload.
MATCH (o:Org) WHERE o.id > $after AND ($upto IS NULL OR o.id <= $upto)
OPTIONAL MATCH (p:Org)-[:PARENT_OF]->(o)
RETURN collect([o.id, p.id, COLLECT {
  MATCH (o)-[s:SET]->(f:Flag)
  RETURN [f.name, s.value, f.type, s.sealed]
}]) AS rows

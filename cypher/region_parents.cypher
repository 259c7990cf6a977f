// $rows: [{id, parent}]: each org exists (created if new) with exactly that parent (null:
// a root). A parent not yet copied is created as a bare org: a snapshot page may list a
// child before its parent, whose own row then gives it its parent and values.
UNWIND $rows AS row
MERGE (o:Org {id: row.id})
WITH o, row
CALL (o) {
  OPTIONAL MATCH (:Org)-[r:PARENT_OF]->(o)
  DELETE r
}
CALL (o, row) {
  WITH o, row WHERE row.parent IS NOT NULL
  MERGE (p:Org {id: row.parent})
  CREATE (p)-[:PARENT_OF]->(o)
}
RETURN count(o) AS applied

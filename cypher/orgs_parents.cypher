// Which of $ids exist, and their parent's id (null for a root), as one list of
// [id, parent] pairs (one value instead of a record per org: much faster to stream).
UNWIND $ids AS id
MATCH (o:Org {id: id})
OPTIONAL MATCH (p:Org)-[:PARENT_OF]->(o)
RETURN collect([id, p.id]) AS pairs

// Which of $ids exist, and their parent's id (null for a root).
UNWIND $ids AS id
MATCH (o:Org {id: id})
OPTIONAL MATCH (p:Org)-[:PARENT_OF]->(o)
RETURN id, p.id AS parent

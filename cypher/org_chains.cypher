// Each org's own id, then its ancestors' ids up to the root, nearest first.
// Orgs that do not exist are absent from the answer.
UNWIND $ids AS id
MATCH (o:Org {id: id})
MATCH p = (o)<-[:PARENT_OF*0..]-(a:Org)
WITH id, a.id AS ancestor, length(p) AS depth
ORDER BY depth
RETURN id, collect(ancestor) AS chain

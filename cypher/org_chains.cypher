// Each org's own id, then its ancestors' ids up to the root, nearest first, as one
// list of [id, chain] pairs. Orgs that do not exist are absent from the answer.
UNWIND $ids AS id
MATCH (o:Org {id: id})
CALL (o) {
  MATCH p = (o)<-[:PARENT_OF*0..]-(a:Org)
  WITH a ORDER BY length(p)
  RETURN collect(a.id) AS chain
}
RETURN collect([id, chain]) AS chains

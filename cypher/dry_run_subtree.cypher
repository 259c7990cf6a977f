// Every org of the subtrees of $roots, the roots included: where a seal decides for all.
// Counting stops at $cap; the sample is a separate short walk that stops at $sample.
CALL () {
  UNWIND $roots AS root
  MATCH (:Org {id: root})-[:PARENT_OF*0..]->(d:Org)
  WITH d LIMIT $cap
  RETURN count(d) AS orgs
}
CALL () {
  UNWIND $roots AS root
  MATCH (:Org {id: root})-[:PARENT_OF*0..]->(d:Org)
  WITH d LIMIT $sample
  RETURN collect(d.id) AS sample
}
RETURN orgs, sample

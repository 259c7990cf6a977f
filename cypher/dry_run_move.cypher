// The orgs of $org's subtree that take at least one of $flags from above $org: for each
// flag, $org and every descendant reached without passing an org that sets that flag
// itself; an org reached for several flags counts once. Counting stops at $cap.
MATCH (r:Org {id: $org})
CALL (r) {
  UNWIND $flags AS flag
  MATCH (r)((:Org)-[:PARENT_OF]->(b:Org) WHERE (COUNT { (b)-[:SET]->() } = 0 OR NOT EXISTS { (b)-[:SET]->(:Flag {name: flag}) })){0,}(d:Org)
  WITH DISTINCT d LIMIT $cap
  RETURN count(d) AS orgs
}
CALL (r) {
  UNWIND $flags AS flag
  MATCH (r)((:Org)-[:PARENT_OF]->(b:Org) WHERE (COUNT { (b)-[:SET]->() } = 0 OR NOT EXISTS { (b)-[:SET]->(:Flag {name: flag}) })){0,}(d:Org)
  WITH DISTINCT d LIMIT $sample
  RETURN collect(d.id) AS sample
}
RETURN orgs, sample

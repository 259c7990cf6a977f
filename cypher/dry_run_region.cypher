// The orgs whose effective value of $flag is decided by what each of $roots sets: the
// root itself and every descendant reached without passing an org that sets $flag
// itself (its own value decides for it and for all below it: the walk stops there).
// Counting stops at $cap; the sample is a separate short walk that stops at $sample.
// The degree test first: most orgs set no flag at all, and a degree is read without
// expanding a single relationship (measured on 633k orgs: 3 s with it, 12 s without).
CALL () {
  UNWIND $roots AS root
  MATCH (r:Org {id: root})
  MATCH (r)((:Org)-[:PARENT_OF]->(b:Org) WHERE (COUNT { (b)-[:SET]->() } = 0 OR NOT EXISTS { (b)-[:SET]->(:Flag {name: $flag}) })){0,}(d:Org)
  WITH d LIMIT $cap
  RETURN count(d) AS orgs
}
CALL () {
  UNWIND $roots AS root
  MATCH (r:Org {id: root})
  MATCH (r)((:Org)-[:PARENT_OF]->(b:Org) WHERE (COUNT { (b)-[:SET]->() } = 0 OR NOT EXISTS { (b)-[:SET]->(:Flag {name: $flag}) })){0,}(d:Org)
  WITH d LIMIT $sample
  RETURN collect(d.id) AS sample
}
RETURN orgs, sample

// As dry_run_region, for many roots at once (a bulk value write): the walk from a root
// also stops at the other roots ($stops), which decide for their own regions.
CALL () {
  UNWIND $roots AS root
  MATCH (r:Org {id: root})
  MATCH (r)((:Org)-[:PARENT_OF]->(b:Org)
            WHERE NOT b.id IN $stops AND (COUNT { (b)-[:SET]->() } = 0 OR NOT EXISTS { (b)-[:SET]->(:Flag {name: $flag}) })){0,}(d:Org)
  WITH d LIMIT $cap
  RETURN count(d) AS orgs
}
CALL () {
  UNWIND $roots AS root
  MATCH (r:Org {id: root})
  MATCH (r)((:Org)-[:PARENT_OF]->(b:Org)
            WHERE NOT b.id IN $stops AND (COUNT { (b)-[:SET]->() } = 0 OR NOT EXISTS { (b)-[:SET]->(:Flag {name: $flag}) })){0,}(d:Org)
  WITH d LIMIT $sample
  RETURN collect(d.id) AS sample
}
RETURN orgs, sample

// The same count as dry_run_region for one root, by subtraction: the orgs of $root's
// subtree, minus the subtrees of the topmost orgs below $root that set $flag themselves
// (each shields its subtree). These are found from the flag's side: each org that sets
// $flag walks up (a chain, at most the tree's depth) to see whether $root is above it
// with no other setter between. Two fast variable-length walks instead of one pruned
// walk, which is about twice as slow per org (bench/RESULTS.md, "Dry runs"); the caller
// takes this way only for flags set on few orgs (see app/services/dry_run.py).
// `total` stops at $cap: past it the caller falls back to the pruned walk, which stops there.
MATCH (x:Org {id: $root})
CALL (x) {
  MATCH (x)-[:PARENT_OF*0..]->(d)
  WITH d LIMIT $cap
  RETURN count(d) AS total
}
CALL (x) {
  MATCH (:Flag {name: $flag})<-[:SET]-(s:Org)
  MATCH p = (s)<-[:PARENT_OF*1..]-(a:Org)
  WHERE a = x AND none(m IN nodes(p)[1..-1] WHERE EXISTS { (m)-[:SET]->(:Flag {name: $flag}) })
  CALL (s) {
    MATCH (s)-[:PARENT_OF*0..]->(e)
    RETURN count(e) AS below
  }
  RETURN sum(below) AS shielded
}
RETURN total, shielded

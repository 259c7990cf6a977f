// The same count as dry_run_region for one root, by subtraction: the orgs of $root's
// subtree, minus the subtrees of the topmost orgs below $root that set $flag themselves
// (each shields its subtree). These are found from the flag's side: each org that sets
// $flag walks up (a chain, at most the tree's depth) to see whether $root is above it
// with no other setter between. Two fast variable-length walks instead of one pruned
// walk, which is about twice as slow per org (bench/RESULTS.md, "Dry runs"); the caller
// takes this way only for flags set on few orgs (see app/services/dry_run.py).
// `total` stops at $cap: past it the caller falls back to the pruned walk, which stops there.
// `WITH DISTINCT d` (a tree has one path to each org, so it changes no count) lets Neo4j
// walk breadth-first keeping only the nodes reached, VarLengthExpand(Pruning,BFS), instead
// of building every path: about twice as fast on a 137k-org subtree (bench/RESULTS.md).
// The flag is found once, and the walk up from a setter is an Expand(Into) ending at $root:
// only the setters below $root come out of it to be checked for a setter in between.
MATCH (x:Org {id: $root})
OPTIONAL MATCH (f:Flag {name: $flag})
CALL (x) {
  MATCH (x)-[:PARENT_OF*0..]->(d)
  WITH DISTINCT d LIMIT $cap
  RETURN count(d) AS total
}
CALL (x, f) {
  MATCH (f)<-[:SET]-(s:Org)
  MATCH p = (s)<-[:PARENT_OF*1..]-(x)
  WHERE none(m IN nodes(p)[1..-1] WHERE EXISTS { (m)-[:SET]->(f) })
  CALL (s) {
    MATCH (s)-[:PARENT_OF*0..]->(e)
    RETURN count(DISTINCT e) AS below
  }
  RETURN sum(below) AS shielded
}
RETURN total, shielded

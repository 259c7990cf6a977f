// Cache misses of many lookups in one round trip (app/cache/batched_reads.py). Each lookup is
// [org, flag] (flag null: every flag). For each org found: its id and its ancestors' ids,
// nearest first, each with the [flag, value] pairs it sets (for that flag, or all) and the
// names of those it sets sealed (docs/api.md, "Safe changes"; nearly always empty). Sealed names
// apart rather than a third item per pair: the caller makes each member's pairs a dict as
// they are. Each org is found by its unique index and the walk goes up from it; never from a
// Flag (a popular flag has millions of incoming SETs). An org that does not exist gives no row.
UNWIND $lookups AS lookup
MATCH (o:Org {id: lookup[0]})
CALL (o, lookup) {
  MATCH p = (o)<-[:PARENT_OF*0..]-(a:Org)
  WITH a, length(p) AS depth
  ORDER BY depth
  WITH a, [(a)-[s:SET]->(f:Flag) WHERE lookup[1] IS NULL OR f.name = lookup[1] | [f.name, s.value, s.sealed]] AS sets
  RETURN collect([a.id, [x IN sets | x[0..2]], [x IN sets WHERE x[2] | x[0]]]) AS chain
}
RETURN lookup[0] AS org, lookup[1] AS flag, chain

// The orgs just below the regions of $roots (see dry_run_region) that set $flag
// themselves, with the value each sets and whether it sealed it: where the next
// region starts when a seal makes every value below count (app/services/dry_run.py).
UNWIND $roots AS root
MATCH (r:Org {id: root})
MATCH (r)((:Org)-[:PARENT_OF]->(b:Org) WHERE (COUNT { (b)-[:SET]->() } = 0 OR NOT EXISTS { (b)-[:SET]->(:Flag {name: $flag}) })){0,}(:Org)
      -[:PARENT_OF]->(s:Org)-[v:SET]->(:Flag {name: $flag})
RETURN collect([s.id, v.value, coalesce(v.sealed, false)]) AS setters

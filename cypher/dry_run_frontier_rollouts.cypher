// Whether any org just below the region of $root (see dry_run_region) sets $flag as a
// rollout (stored as a list: app/domain/rollouts.py). Orgs out of such a rollout take
// their value from above it, so the pruned count is not exact there (app/services/dry_run.py).
MATCH (r:Org {id: $root})
MATCH (r)((:Org)-[:PARENT_OF]->(b:Org) WHERE (COUNT { (b)-[:SET]->() } = 0 OR NOT EXISTS { (b)-[:SET]->(:Flag {name: $flag}) })){0,}(:Org)
      -[:PARENT_OF]->(:Org)-[v:SET]->(:Flag {name: $flag})
WHERE v.value IS :: LIST<ANY>
RETURN count(v) > 0 AS found
LIMIT 1

// Every org of $root's subtree, the root included, parents before their children, each as
// [id, parent id, its stored value of $flag or null, sealed]: what a dry run involving a
// rollout resolves twice, org by org, in Python (app/services/dry_run.py). A rollout does
// not shield the subtree below it (orgs out of it fall through to what is set above), so the
// pruned walk of dry_run_region cannot count it; this walk reads the whole subtree.
MATCH p = (:Org {id: $root})-[:PARENT_OF*0..]->(d:Org)
WITH d, length(p) AS depth, nodes(p) AS path
ORDER BY depth
OPTIONAL MATCH (d)-[v:SET]->(:Flag {name: $flag})
RETURN collect([d.id, CASE WHEN depth = 0 THEN null ELSE path[depth - 1].id END, v.value, coalesce(v.sealed, false)]) AS rows

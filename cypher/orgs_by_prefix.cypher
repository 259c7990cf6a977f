// Up to $scan org ids in [$low, $high), in id order: one range seek on the org_id_unique
// index, which also yields the order, so it stops after $scan entries. A prefix P is
// the range [P, P + "\u007f") since every id character sorts below U+007F.
// $roots null: every org is in scope. Otherwise an org is when one of its ancestors
// (or itself) is among $roots: a walk up one parent at a time per candidate, as long
// as the org's depth (which the depth limit caps).
MATCH (o:Org)
WHERE o.id >= $low AND o.id < $high
WITH o ORDER BY o.id LIMIT $scan
WITH o, $roots IS NULL OR any(a IN [(o)<-[:PARENT_OF*0..]-(x:Org) | x.id] WHERE a IN $roots) AS inside
RETURN collect(CASE WHEN inside THEN o.id END) AS ids, max(o.id) AS last, count(o) AS scanned

// Whether org has a descendant $levels (at least 1) below it: how deep a move puts the lowest
// org of the moved subtree. The literal bound is the largest GRAPHFLAGS_MAX_DEPTH allowed
// (app/settings.py); in a tree each path is one descendant, so this reads the subtree once
// at most, and stops at the first org deep enough.
MATCH (o:Org {id: $org})
MATCH p = (o)-[:PARENT_OF*1..1000]->(:Org)
WHERE length(p) = $levels
RETURN true AS reaches
LIMIT 1

// Pending schedules, soonest first; every filter optional (null: none). $org alone, or with
// $subtree its descendants too; a scoped caller ($scopes) sees those inside its subtrees.
MATCH (s:Schedule {status: 'pending'})
WHERE ($flag IS NULL OR s.flag = $flag)
  AND ($org IS NULL OR s.org = $org
       OR ($subtree AND EXISTS { MATCH (:Org {id: $org})-[:PARENT_OF*1..]->(:Org {id: s.org}) }))
  AND ($scopes IS NULL OR EXISTS { MATCH (a:Org)-[:PARENT_OF*0..]->(:Org {id: s.org}) WHERE a.id IN $scopes })
WITH s ORDER BY s.at, s.id LIMIT $limit
RETURN collect(s {.id, .org, .flag, .value, .clear, .sealed, .actor, at: toString(s.at)}) AS schedules

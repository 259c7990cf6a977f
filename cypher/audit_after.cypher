// The change feed: events with seq in ($after, $ceiling], oldest first, as one list. Other
// instances follow it to drop cached values; a scoped reader sees only its subtrees, and
// its $ceiling bounds how many events one request may pass over (app/services/changes.py).
MATCH (e:AuditEvent)
WHERE e.seq > $after AND e.seq <= $ceiling
  AND ($scopes IS NULL OR any(x IN e.path WHERE x IN $scopes))
WITH e ORDER BY e.seq ASC LIMIT $limit
RETURN collect({seq: e.seq, at: e.at, actor: e.actor, action: e.action, org: e.org, flag: e.flag,
                old: e.old, new: e.new, sealed: e.sealed, schedule: e.schedule}) AS events

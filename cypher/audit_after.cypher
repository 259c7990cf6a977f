// The change feed: events with seq above $after, oldest first, as one list. Other
// instances follow it to drop cached values; a scoped reader sees only its subtrees.
MATCH (e:AuditEvent)
WHERE e.seq > $after
  AND ($scopes IS NULL OR any(x IN e.path WHERE x IN $scopes))
WITH e ORDER BY e.seq ASC LIMIT $limit
RETURN collect({seq: e.seq, at: e.at, actor: e.actor, action: e.action, org: e.org, flag: e.flag,
                old: e.old, new: e.new, sealed: e.sealed, schedule: e.schedule}) AS events

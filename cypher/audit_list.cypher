// Newest first, from the seq index, within [$floor, $before); every filter is optional
// (null: no filter). Used when no equality filter can seek an index (app/store/audit.py):
// the caller bounds the window when a filter remains, so no request walks the whole log.
// `path` holds the org and its ancestors when the event happened, so a subtree is
// `$org IN e.path` and a scoped reader sees events whose path meets its $scopes.
MATCH (e:AuditEvent)
WHERE e.seq < $before AND e.seq >= $floor
  AND ($org IS NULL OR (CASE WHEN $subtree THEN $org IN e.path ELSE e.org = $org END))
  AND ($flag IS NULL OR e.flag = $flag)
  AND ($actor IS NULL OR e.actor = $actor)
  AND ($since IS NULL OR e.at >= datetime($since))
  AND ($scopes IS NULL OR any(x IN e.path WHERE x IN $scopes))
RETURN e.seq AS seq, e.at AS at, e.actor AS actor, e.action AS action,
       e.org AS org, e.flag AS flag, e.old AS old, e.new AS new, e.sealed AS sealed, e.schedule AS schedule
ORDER BY e.seq DESC
LIMIT $limit

// audit_list for `?actor=`: seeks the (actor, seq) index, which hands the actor's events
// over newest first (ORDER BY names both properties so no sort runs); other filters as there.
MATCH (e:AuditEvent)
USING INDEX e:AuditEvent(actor, seq)
WHERE e.actor = $actor AND e.seq < $before AND e.seq >= $floor
  AND ($org IS NULL OR (CASE WHEN $subtree THEN $org IN e.path ELSE e.org = $org END))
  AND ($flag IS NULL OR e.flag = $flag)
  AND ($since IS NULL OR e.at >= datetime($since))
  AND ($scopes IS NULL OR any(x IN e.path WHERE x IN $scopes))
RETURN e.seq AS seq, e.at AS at, e.actor AS actor, e.action AS action,
       e.org AS org, e.flag AS flag, e.old AS old, e.new AS new, e.sealed AS sealed, e.schedule AS schedule
ORDER BY e.actor DESC, e.seq DESC
LIMIT $limit

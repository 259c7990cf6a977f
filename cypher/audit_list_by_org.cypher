// audit_list for `?org=` without subtree: seeks the (org, seq) index, newest first
// (ORDER BY names both properties so no sort runs); other filters as there.
MATCH (e:AuditEvent)
USING INDEX e:AuditEvent(org, seq)
WHERE e.org = $org AND e.seq < $before AND e.seq >= $floor
  AND ($flag IS NULL OR e.flag = $flag)
  AND ($actor IS NULL OR e.actor = $actor)
  AND ($since IS NULL OR e.at >= datetime($since))
  AND ($scopes IS NULL OR any(x IN e.path WHERE x IN $scopes))
RETURN e.seq AS seq, e.at AS at, e.actor AS actor, e.action AS action,
       e.org AS org, e.flag AS flag, e.old AS old, e.new AS new, e.sealed AS sealed, e.schedule AS schedule
ORDER BY e.org DESC, e.seq DESC
LIMIT $limit

// One page of audit events with seq in ($after, $upto], oldest first, as one list.
MATCH (e:AuditEvent) WHERE e.seq > $after AND e.seq <= $upto
WITH e ORDER BY e.seq LIMIT $limit
RETURN collect([e.seq, toString(e.at), e.actor, e.action, e.org, e.flag, e.old, e.new, e.path, e.sealed,
                e.schedule]) AS events

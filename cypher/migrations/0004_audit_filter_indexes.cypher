// Audit and change-feed filters seek these instead of walking the log (issue 10): each
// serves an equality filter and hands its events over in seq order, so a page stops
// after `limit` of them. Population is awaited so that the statements' index hints can
// be planned as soon as this migration is recorded.
CREATE INDEX audit_actor_seq IF NOT EXISTS FOR (e:AuditEvent) ON (e.actor, e.seq);
CREATE INDEX audit_org_seq IF NOT EXISTS FOR (e:AuditEvent) ON (e.org, e.seq);
CREATE INDEX audit_flag_seq IF NOT EXISTS FOR (e:AuditEvent) ON (e.flag, e.seq);
CALL db.awaitIndexes(300)

// Audit and change-feed filters seek these instead of walking the log (issue 10): each
// serves an equality filter and hands its events over in seq order, so a page stops
// after `limit` of them. They replace the single-property indexes of 0002, which served
// the same seeks but made the newest-first pages sort every matching event; dropping
// those keeps the cost of writing an audit event where it was. Population is awaited so
// that the statements' index hints can be planned once this migration is recorded.
CREATE INDEX audit_actor_seq IF NOT EXISTS FOR (e:AuditEvent) ON (e.actor, e.seq);
CREATE INDEX audit_org_seq IF NOT EXISTS FOR (e:AuditEvent) ON (e.org, e.seq);
CREATE INDEX audit_flag_seq IF NOT EXISTS FOR (e:AuditEvent) ON (e.flag, e.seq);
DROP INDEX audit_actor IF EXISTS;
DROP INDEX audit_org IF EXISTS;
DROP INDEX audit_flag IF EXISTS;
CALL db.awaitIndexes(300)

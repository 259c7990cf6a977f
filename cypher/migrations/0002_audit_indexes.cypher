// Audit queries filter by org, flag, actor and time.
CREATE INDEX audit_org IF NOT EXISTS FOR (e:AuditEvent) ON (e.org);
CREATE INDEX audit_flag IF NOT EXISTS FOR (e:AuditEvent) ON (e.flag);
CREATE INDEX audit_actor IF NOT EXISTS FOR (e:AuditEvent) ON (e.actor);
CREATE INDEX audit_at IF NOT EXISTS FOR (e:AuditEvent) ON (e.at);

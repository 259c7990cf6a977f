// One org per id, one flag per name, one audit event per seq: the unique indexes
// that every lookup starts from.
CREATE CONSTRAINT org_id_unique IF NOT EXISTS FOR (o:Org) REQUIRE o.id IS UNIQUE;
CREATE CONSTRAINT flag_name_unique IF NOT EXISTS FOR (f:Flag) REQUIRE f.name IS UNIQUE;
CREATE CONSTRAINT audit_seq_unique IF NOT EXISTS FOR (e:AuditEvent) REQUIRE e.seq IS UNIQUE;
CREATE CONSTRAINT audit_sequence_name_unique IF NOT EXISTS FOR (s:AuditSequence) REQUIRE s.name IS UNIQUE;

// The single counter every change takes its audit seq from (see audit_claim_sequence).
MERGE (s:AuditSequence {name: 'audit'}) ON CREATE SET s.last = 0;

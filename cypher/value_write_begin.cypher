// The first statement of every value write: take the sequence lock (see
// audit_claim_sequence.cypher for why writers are serialised), then read the org's chain
// for $flag exactly as flag_chain.cypher does. One round trip instead of two, and the
// chain is read under the lock, so the old value the audit event records is the one replaced.
MATCH (s:AuditSequence {name: 'audit'})
SET s.claims = coalesce(s.claims, 0) + 1
WITH s
MATCH (o:Org {id: $org})
MATCH p = (o)<-[:PARENT_OF*0..]-(a:Org)
OPTIONAL MATCH (a)-[v:SET]->(:Flag {name: $flag})
RETURN a.id AS org, v.value AS value, v.sealed AS sealed
ORDER BY length(p)

// The first statement of every batch of value writes (a group commit): take the sequence
// lock once for the whole batch (see audit_claim_sequence.cypher for why writers are
// serialised), then read each row's chain for its flag exactly as flag_chain.cypher does.
// Read under the lock, so the old value each audit event records is the one replaced.
// $rows: [{org, flag}]; one record per row, `i` its index, `chain` [[org id, stored value, sealed]]
// nearest first, empty when the org does not exist.
MATCH (s:AuditSequence {name: 'audit'})
SET s.claims = coalesce(s.claims, 0) + 1
WITH s
UNWIND range(0, size($rows) - 1) AS i
WITH i, $rows[i] AS row
OPTIONAL MATCH (o:Org {id: row.org})
CALL (o, row) {
  MATCH p = (o)<-[:PARENT_OF*0..]-(a:Org)
  OPTIONAL MATCH (a)-[v:SET]->(:Flag {name: row.flag})
  WITH a, v ORDER BY length(p)
  RETURN collect([a.id, v.value, v.sealed]) AS chain
}
RETURN i, chain

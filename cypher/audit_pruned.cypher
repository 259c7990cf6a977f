// The retention watermark: every event with seq at or below it may be gone (0: none pruned yet).
MATCH (s:AuditSequence {name: 'audit'})
RETURN coalesce(s.pruned, 0) AS pruned

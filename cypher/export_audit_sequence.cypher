// The audit sequence as the export records it: the newest seq handed out, and the
// retention watermark (every event at or below `pruned` may have been deleted).
MATCH (s:AuditSequence {name: 'audit'})
RETURN s.last AS last, coalesce(s.pruned, 0) AS pruned

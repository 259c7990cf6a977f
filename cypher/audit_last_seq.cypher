// The newest seq handed out (0 before any change): where a new follower starts.
MATCH (s:AuditSequence {name: 'audit'})
RETURN s.last AS last

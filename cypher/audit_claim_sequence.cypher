// Every writer takes the write lock on the one AuditSequence node first and keeps it
// until commit. Writers are therefore serialised, which is what makes `seq` follow
// commit order: a change-feed reader that has seen seq N never later finds a committed
// event below N. (Flag writes are rare next to reads; this is the price of that promise.)
MATCH (s:AuditSequence {name: 'audit'})
SET s.claims = coalesce(s.claims, 0) + 1
RETURN s.last AS last

// Retention: delete up to $batch audit events older than $cutoff, oldest first, and
// raise the watermark `pruned` to the highest seq deleted. The change feed answers
// 410 to a client whose position is below it (it would silently miss events).
// Ordered by the `at` index so no sort runs over millions of old events; `at` follows
// `seq` (writers are serialised), and the watermark is the highest seq deleted anyway.
MATCH (e:AuditEvent)
WHERE e.at < $cutoff
WITH e ORDER BY e.at ASC LIMIT $batch
WITH collect(e) AS old
WITH old, reduce(top = 0, e IN old | CASE WHEN e.seq > top THEN e.seq ELSE top END) AS top
FOREACH (e IN old | DETACH DELETE e)
WITH size(old) AS deleted, top
WHERE deleted > 0
MATCH (s:AuditSequence {name: 'audit'})
SET s.pruned = CASE WHEN coalesce(s.pruned, 0) > top THEN s.pruned ELSE top END
RETURN deleted

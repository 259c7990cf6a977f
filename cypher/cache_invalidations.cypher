// What other instances changed since $after: the newest seq, how many events of
// (from, last] this read sees, and the (action, org, flag) of every event up to it that
// can invalidate a cached value. Seqs have no gaps, but a read may see the sequence node of
// a transaction whose events it does not see yet (reads are read-committed, not a snapshot):
// the follower resumes from `last` only when it saw all of them (`visible`). Retention may
// have deleted events above $after (`pruned`, the highest seq ever deleted): those are gone,
// not in flight, so they are not waited for; `missed` says the follower lost them (it then
// forgets what it cached). The seq lets an instance skip the changes it made itself (it
// applied them when they committed). Org creations, the bulk of most feeds, change no cached
// value and are filtered out in the database.
MATCH (s:AuditSequence {name: 'audit'})
WITH s, coalesce(s.pruned, 0) AS pruned
WITH s, pruned > $after AS missed, CASE WHEN pruned > $after THEN pruned ELSE $after END AS from
RETURN s.last AS last,
       missed,
       from,
       COUNT { MATCH (e:AuditEvent) WHERE e.seq > from AND e.seq <= s.last } AS visible,
       COLLECT {
         MATCH (e:AuditEvent)
         WHERE e.seq > $after AND e.seq <= s.last AND e.action IN ['flag.set', 'flag.clear', 'org.move']
         RETURN [e.seq, e.action, e.org, e.flag]
       } AS changes

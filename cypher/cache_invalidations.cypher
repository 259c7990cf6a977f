// What other instances changed since $after: the newest seq, and the (action, org,
// flag) of every event up to it that can invalidate a cached value. Events up to
// s.last are committed (seq is taken in the same transaction as its change), so
// reading up to `last` and resuming from it misses nothing. The seq lets an instance
// skip the changes it made itself (it applied them when they committed). Org creations, the bulk
// of most feeds, change no cached value and are filtered out in the database.
MATCH (s:AuditSequence {name: 'audit'})
RETURN s.last AS last,
       COLLECT {
         MATCH (e:AuditEvent)
         WHERE e.seq > $after AND e.seq <= s.last AND e.action IN ['flag.set', 'flag.clear', 'org.move']
         RETURN [e.seq, e.action, e.org, e.flag]
       } AS changes

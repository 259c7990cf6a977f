// Record replication state on the one Replica node; $fields holds only names the
// region code chooses (seq, url, connected, confirmed_at, ...), never request input.
MERGE (r:Replica {name: 'upstream'})
SET r += $fields
RETURN r.seq AS seq

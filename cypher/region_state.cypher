// This region's replication state (null before its first bootstrap), and whether the
// database holds any org at all (a non-empty database that is no region copy is refused).
OPTIONAL MATCH (r:Replica {name: 'upstream'})
RETURN r {.*} AS replica, EXISTS { MATCH (:Org) } AS has_orgs

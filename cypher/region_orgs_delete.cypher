// $ids: orgs the upstream no longer has (it was restored from an older backup or
// replaced): removed with their edges and values on reload.
UNWIND $ids AS id
MATCH (o:Org {id: id})
DETACH DELETE o

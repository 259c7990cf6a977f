// The hot path. Start from the org's unique index, walk up to the root, and pick up
// the value each org sets for $flag (null where it sets none). Never start from the
// flag: a popular flag has millions of incoming SETs.
MATCH (o:Org {id: $org})
MATCH p = (o)<-[:PARENT_OF*0..]-(a:Org)
OPTIONAL MATCH (a)-[s:SET]->(:Flag {name: $flag})
RETURN a.id AS org, s.value AS value, s.sealed AS sealed
ORDER BY length(p)

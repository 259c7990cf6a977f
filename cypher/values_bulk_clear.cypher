// $orgs: the orgs that set $flag no more.
UNWIND $orgs AS org
MATCH (:Org {id: org})-[s:SET]->(:Flag {name: $flag})
DELETE s

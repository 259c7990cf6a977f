MATCH (:Org {id: $org})-[s:SET]->(:Flag {name: $flag})
DELETE s

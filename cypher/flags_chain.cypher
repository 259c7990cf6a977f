// Every value set on the org and its ancestors, nearest first, for all flags at once.
MATCH (o:Org {id: $org})
MATCH p = (o)<-[:PARENT_OF*0..]-(a:Org)
RETURN a.id AS org, [(a)-[s:SET]->(f:Flag) | [f.name, s.value, s.sealed]] AS values
ORDER BY length(p)

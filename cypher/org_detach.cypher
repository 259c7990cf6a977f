MATCH (:Org)-[r:PARENT_OF]->(:Org {id: $org})
DELETE r

MATCH (o:Org {id: $org})
RETURN COUNT { (o)-[:PARENT_OF]->(:Org) } AS children

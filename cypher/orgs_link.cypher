// $rows: [{id, parent}]; both orgs exist.
UNWIND $rows AS row
MATCH (child:Org {id: row.id})
MATCH (parent:Org {id: row.parent})
CREATE (parent)-[:PARENT_OF]->(child)

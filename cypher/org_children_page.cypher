// One page of an org's children in id order, each with its own number of children.
// Starts from the org's unique-index entry and reads only its PARENT_OF relationships
// (a top-k sort of that one org's children): the work grows with the org's fan-out,
// never with the tree. $after is the last id of the previous page ("" for the first).
MATCH (:Org {id: $org})-[:PARENT_OF]->(c:Org)
WHERE c.id > $after
WITH c ORDER BY c.id LIMIT $limit
RETURN c.id AS id, COUNT { (c)-[:PARENT_OF]->(:Org) } AS children

// Flags gone from the catalog keep their node and stored values (putting the flag
// back restores them) but are marked inactive for people browsing the graph.
UNWIND $names AS name
MATCH (f:Flag {name: name})
SET f.active = false

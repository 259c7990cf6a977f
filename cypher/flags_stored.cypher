// The catalog as last synced to the graph.
MATCH (f:Flag)
RETURN f.name AS name, f.definition AS definition, f.active AS active

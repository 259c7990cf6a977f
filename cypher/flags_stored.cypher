// The catalog as last synced to the graph, as one list: the async driver streams
// records one by one (slow for 100,000 rows); one collected value comes at once.
MATCH (f:Flag)
RETURN collect([f.name, f.definition, f.active]) AS flags

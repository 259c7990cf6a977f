MERGE (m:Migration {name: $name}) ON CREATE SET m.applied_at = datetime()

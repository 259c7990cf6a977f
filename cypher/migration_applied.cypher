// Which migrations already ran.
MATCH (m:Migration) RETURN m.name AS name

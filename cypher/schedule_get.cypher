MATCH (s:Schedule {id: $id})
RETURN s {.id, .org, .flag, .status, at: toString(s.at)} AS schedule

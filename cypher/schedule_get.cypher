// One schedule, with what its audit events name: the change it makes and when.
MATCH (s:Schedule {id: $id})
RETURN s {.id, .org, .flag, .value, .clear, .sealed, .status, .at} AS schedule

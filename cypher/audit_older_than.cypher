// Whether the event $seq happened more than $margin seconds before $since: then every
// event below it did too (an event's `at` is its transaction's start, at most a
// transaction's lifetime before it took the sequence lock), and a `since` search stops.
MATCH (e:AuditEvent {seq: $seq})
RETURN e.at < datetime($since) - duration({seconds: $margin}) AS older

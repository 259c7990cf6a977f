// $events: [{action, org, flag, old, new, path, sealed, schedule, actor?, at?, upstream_seq?}],
// old/new as JSON text; an event's own actor (a group commit mixes callers) else $actor.
// `at` is RFC 3339 text for an event copied from elsewhere (a region applying its upstream's,
// with the `upstream_seq` it came from), else absent: now. Seqs follow the list order; the
// caller holds the sequence lock (audit_claim_sequence).
// One row back, the first seq: the others follow it, and one row is far cheaper than one per event.
MATCH (s:AuditSequence {name: 'audit'})
WITH s, s.last AS base
SET s.last = base + size($events)
WITH base
UNWIND range(0, size($events) - 1) AS i
WITH base, base + i + 1 AS seq, $events[i] AS event
CREATE (e:AuditEvent {
  seq: seq, at: coalesce(datetime(event.at), datetime()), actor: coalesce(event.actor, $actor),
  action: event.action, org: event.org, flag: event.flag, old: event.old, new: event.new, path: event.path,
  sealed: event.sealed, schedule: event.schedule, upstream_seq: event.upstream_seq
})
WITH base, count(e) AS written
RETURN base + 1 AS first

// $events: [{action, org, flag, old, new, path, sealed, schedule, actor?}], old/new as JSON text;
// an event's own actor (a group commit mixes callers) else $actor. Seqs follow
// the list order; the caller holds the sequence lock (audit_claim_sequence).
// One row back, the first seq: the others follow it, and one row is far cheaper than one per event.
MATCH (s:AuditSequence {name: 'audit'})
WITH s, s.last AS base
SET s.last = base + size($events)
WITH base
UNWIND range(0, size($events) - 1) AS i
WITH base, base + i + 1 AS seq, $events[i] AS event
CREATE (e:AuditEvent {
  seq: seq, at: datetime(), actor: coalesce(event.actor, $actor), action: event.action,
  org: event.org, flag: event.flag, old: event.old, new: event.new, path: event.path, sealed: event.sealed,
  schedule: event.schedule
})
WITH base, count(e) AS written
RETURN base + 1 AS first

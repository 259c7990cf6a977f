// The region's own audit log: $events [{action, org, flag, old, new, path, at, actor,
// upstream_seq}], old/new as JSON text, `at` as RFC 3339 text (null: now). Seqs are the
// region's own and follow the list order, so this instance's cache follower (which reads
// this log) learns of every change the region applies; `upstream_seq` says where it came
// from (null for a difference found on reload). The caller holds the sequence lock.
MATCH (s:AuditSequence {name: 'audit'})
WITH s, s.last AS base
SET s.last = base + size($events)
WITH base
UNWIND range(0, size($events) - 1) AS i
WITH base, base + i + 1 AS seq, $events[i] AS event
CREATE (e:AuditEvent {
  seq: seq, at: coalesce(datetime(event.at), datetime()), actor: event.actor, action: event.action,
  org: event.org, flag: event.flag, old: event.old, new: event.new, path: event.path,
  upstream_seq: event.upstream_seq, sealed: event.sealed
})
RETURN count(e) AS written

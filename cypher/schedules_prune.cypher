// Retention: delete up to $batch finished schedules (applied, failed or cancelled) that
// finished before $cutoff. Their age is counted from `finished_at`, not `at`: a schedule
// cancelled long before its time is kept as long as any other. The applied change itself
// stays in the audit log (with its schedule id), which has its own retention.
// Seeks the schedule_finished index (status, finished_at), one range per status.
MATCH (s:Schedule)
WHERE s.status IN ['applied', 'failed', 'cancelled'] AND s.finished_at < $cutoff
WITH s LIMIT $batch
DETACH DELETE s
RETURN count(*) AS deleted

// $status: applied, failed or cancelled; $reason says why a change failed.
MATCH (s:Schedule {id: $id})
SET s.status = $status, s.reason = $reason, s.seq = $seq, s.finished_at = datetime(), s.finished_by = $actor

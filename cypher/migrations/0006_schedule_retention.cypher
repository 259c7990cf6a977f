// Schedule retention (cypher/schedules_prune.cypher): finished schedules found by status and
// by when they finished, so pruning seeks them instead of reading every schedule.
CREATE INDEX schedule_finished IF NOT EXISTS FOR (s:Schedule) ON (s.status, s.finished_at);

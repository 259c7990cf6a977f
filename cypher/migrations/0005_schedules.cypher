// Scheduled changes (app/services/schedules.py): one node per schedule, found by id, and
// the due ones found by status and time.
CREATE CONSTRAINT schedule_id_unique IF NOT EXISTS FOR (s:Schedule) REQUIRE s.id IS UNIQUE;
CREATE INDEX schedule_due IF NOT EXISTS FOR (s:Schedule) ON (s.status, s.at);

// Pending schedules whose time has come, oldest first. Read under the writers' lock
// (audit_claim_sequence), and marked applied or failed in the same transaction: however
// many instances poll, each schedule is applied once.
MATCH (s:Schedule {status: 'pending'})
WHERE s.at <= datetime()
WITH s ORDER BY s.at, s.id LIMIT $limit
RETURN collect(s {.id, .org, .flag, .value, .clear, .sealed, .actor, .role, .orgs, .at}) AS due

// Whether any pending schedule is due: a cheap read before taking the writers' lock.
MATCH (s:Schedule {status: 'pending'})
WHERE s.at <= datetime()
RETURN s.id AS id
LIMIT 1

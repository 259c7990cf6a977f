MATCH (s:Schedule {status: 'pending'})
RETURN count(s) AS pending

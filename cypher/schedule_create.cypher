// A pending scheduled change. $value is the value as JSON text (null with $clear); the
// scheduler's sub, role and subtrees are kept to check the change again when it is applied.
CREATE (:Schedule {
  id: $id, org: $org, flag: $flag, value: $value, clear: $clear, sealed: $sealed, at: datetime($at),
  actor: $actor, role: $role, orgs: $orgs, status: 'pending', created_at: datetime()
})

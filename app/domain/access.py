"""Who may do what: roles, and tenant scoping by subtree.

A principal is what a verified token says. Its `orgs` are roots of the subtrees it
may act on; an org is in scope when it or one of its ancestors is among them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from app.errors import Problem, ProblemType


class Role(IntEnum):
    # Each role includes the ones before it.
    reader = 1
    writer = 2
    admin = 3


ALL_ORGS = "*"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    role: Role | None
    orgs: frozenset[str]
    # The token's `exp` (seconds since the epoch): what a stream opened with it may not outlive.
    expires: float | None = None

    @property
    def unscoped(self) -> bool:
        return ALL_ORGS in self.orgs

    def require(self, role: Role) -> None:
        if self.role is None or self.role < role:
            raise Problem(ProblemType.forbidden, f"this needs the {role.name} role")

    def may_act_on(self, chain: Iterable[str]) -> bool:
        """`chain` is an existing org's own id and its ancestors' ids."""
        return self.unscoped or not self.orgs.isdisjoint(chain)

    def require_scope(self, chain: Iterable[str] | None) -> None:
        """403 unless the org (chain None: it does not exist) is inside the token's subtrees.

        A missing org answers 403 too for a scoped token, so it cannot probe other
        tenants' ids; an unscoped token goes on to learn that it does not exist.
        """
        if self.unscoped:
            return
        if chain is None or self.orgs.isdisjoint(chain):
            raise Problem(ProblemType.forbidden, "the organization is outside this token's subtrees")


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Build a principal from verified claims; unknown roles are ignored."""
    roles = claims.get("roles") or []
    if isinstance(roles, str):
        roles = [roles]
    known = [Role[name] for name in roles if isinstance(name, str) and name in Role.__members__]
    orgs = claims.get("orgs") or []
    if isinstance(orgs, str):
        orgs = [orgs]
    return Principal(
        subject=str(claims["sub"]),
        role=max(known) if known else None,
        orgs=frozenset(org for org in orgs if isinstance(org, str)),
        expires=claims.get("exp"),
    )

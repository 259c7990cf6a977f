"""What the contract fuzzer (schemathesis) needs to reach real paths, for `make test` and `make fuzz`.

A small org tree with fixed ids (put back as it was before each run), the tokens to fuzz
with (an unscoped admin, and reader, writer and admin tokens scoped to subtrees of that
tree), and the schemathesis configuration (schemathesis.toml beside this file), whose
dictionaries bias the org and flag parameters toward ids that exist: without them almost
every generated id is unknown and the fuzzer never gets past `404` / `403`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.auth.tokens import mint_dev_token
from app.settings import Settings

CATALOG = Path(__file__).resolve().parent.parent / "data" / "catalog.json"


@dataclass(frozen=True)
class Seed:
    prefix: str

    def org(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @property
    def tree(self) -> list[tuple[str, str | None]]:
        """root -> (eu -> (de, fr), us -> (ny)); and a second root, other."""
        o = self.org
        return [
            (o("root"), None),
            (o("eu"), o("root")),
            (o("us"), o("root")),
            (o("de"), o("eu")),
            (o("fr"), o("eu")),
            (o("ny"), o("us")),
            (o("other"), None),
        ]

    @property
    def orgs(self) -> list[str]:
        return [org for org, _ in self.tree]

    def tokens(self, settings: Settings, ttl: int = 3 * 3600) -> dict[str, str]:
        """Token kind -> JWT. Scoped tokens see part of the tree, so fuzzing meets 403 paths too."""

        def mint(role: str, *orgs: str) -> str:
            return mint_dev_token(settings, subject=f"fuzz-{role}", roles=[role], orgs=list(orgs), ttl=ttl)

        return {
            "admin": mint("admin", "*"),
            "scoped-admin": mint("admin", self.org("eu")),
            "scoped-writer": mint("writer", self.org("eu"), self.org("other")),
            "scoped-reader": mint("reader", self.org("us")),
        }


SEED = Seed("fz")  # the ids tests/fuzzing/schemathesis.toml names
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"


def flag_names(catalog: Path = CATALOG) -> list[str]:
    return sorted(json.loads(catalog.read_text())["flags"])


def plant(base_url: str, admin_token: str, seed: Seed = SEED) -> None:
    """Create the tree, or put it back as it was: an earlier fuzz run may have moved its orgs."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        for org, parent in seed.tree:
            created = http.post("/v1/orgs", json={"id": org, "parent": parent})
            if created.status_code == 409:
                created = http.patch(f"/v1/orgs/{org}", json={"parent": parent})
            created.raise_for_status()

"""A local Neo4j home run by neo4j/neo4jctl: its ports and password, stop, start and neo4j-admin.

The offline tools (import, dump, load) need the server stopped; this is the one place
that drives neo4jctl for them.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from app.settings import Settings

REPO = Path(__file__).resolve().parent.parent
NEO4JCTL = REPO / "neo4j" / "neo4jctl"
DEV_HOME = Path(".local/neo4j/home")


class Neo4jCtlError(RuntimeError):
    pass


@dataclass(frozen=True)
class Neo4jHome:
    path: Path

    def __post_init__(self) -> None:
        if not (self.path / "conf" / "neo4j.conf").is_file():
            raise Neo4jCtlError(f"{self.path} is not a Neo4j home (run: neo4j/neo4jctl init {self.path})")

    def _conf(self, key: str) -> str:
        text = (self.path / "conf" / "neo4j.conf").read_text()
        found = re.search(rf"^{re.escape(key)}=(.*)$", text, re.MULTILINE)
        if found is None:
            raise Neo4jCtlError(f"{self.path}/conf/neo4j.conf sets no {key}")
        return found.group(1).strip()

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self._conf('server.bolt.listen_address').rsplit(':', 1)[1]}"

    @property
    def password(self) -> str:
        return (self.path / "password").read_text().strip()

    def settings(self, base: Settings) -> Settings:
        """`base` pointed at this home's server."""
        return base.model_copy(update={"neo4j_uri": self.bolt_uri, "neo4j_user": "neo4j",
                                       "neo4j_password": SecretStr(self.password), "neo4j_database": "neo4j"})

    def database_dir(self) -> Path:
        return self.path / "data" / "databases" / "neo4j"

    def store_bytes(self) -> int:
        """Bytes on disk of the default database's store files (transaction logs not counted)."""
        return _folder_bytes(self.database_dir())

    def transaction_log_bytes(self) -> int:
        # Preallocated in 256 MiB files, so small databases look big if these are counted.
        return _folder_bytes(self.path / "data" / "transactions" / "neo4j")

    def running(self) -> bool:
        return self._ctl("status", check=False).returncode == 0

    def stop(self) -> None:
        self._ctl("stop")

    def start(self, timeout: int = 300) -> None:
        self._ctl("start", "--timeout", str(timeout))

    def admin(self, *arguments: str, heap: str | None = None) -> subprocess.CompletedProcess:
        """neo4j-admin for this home; `heap` sizes the admin JVM (HEAP_SIZE)."""
        env = {**os.environ, **({"HEAP_SIZE": heap} if heap else {})}
        return self._ctl("admin", *arguments, env=env)

    def _ctl(self, command: str, *arguments: str, check: bool = True, env: dict | None = None
             ) -> subprocess.CompletedProcess:
        done = subprocess.run([str(NEO4JCTL), command, str(self.path), *arguments], capture_output=True, text=True,
                              env=env)
        if check and done.returncode != 0:
            raise Neo4jCtlError(f"neo4jctl {command} {self.path} failed ({done.returncode}):\n"
                                f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        return done


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total

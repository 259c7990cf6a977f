"""Every Cypher statement the app runs lives in `cypher/NAME.cypher`; this loads them.

Statements are read once, at import, and looked up by name, so a missing or
misspelt file fails at start-up rather than on the first request that needs it.
User input only ever travels as parameters.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# An installed wheel carries the statements inside the package; a checkout has them at the top.
_CANDIDATES = (_HERE.parent / "cypher", _HERE.parent.parent / "cypher")


def cypher_dir() -> Path:
    for candidate in _CANDIDATES:
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"no cypher/ folder found in {[str(c) for c in _CANDIDATES]}")


@cache
def _statements() -> dict[str, str]:
    return {path.stem: path.read_text() for path in sorted(cypher_dir().glob("*.cypher"))}


def cypher(name: str) -> str:
    """The text of `cypher/<name>.cypher`."""
    try:
        return _statements()[name]
    except KeyError:
        raise KeyError(f"no statement cypher/{name}.cypher") from None


def migration_files() -> list[Path]:
    """`cypher/migrations/NNNN_name.cypher`, in the order they must run."""
    return sorted((cypher_dir() / "migrations").glob("*.cypher"))

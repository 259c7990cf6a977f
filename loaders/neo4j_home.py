"""The loaders' view of a local Neo4j home; the control itself lives in app/neo4j_server.

Kept so that `from loaders.neo4j_home import Neo4jHome` (loaders, benchmarks) still works.
"""

from app.neo4j_server import DEV_HOME, Neo4jCtlError, Neo4jHome
from app.neo4j_server.home import REPO

# The command-line wrapper, for scripts that run it as a process (bench/).
NEO4JCTL = REPO / "neo4j" / "neo4jctl"

__all__ = ["DEV_HOME", "NEO4JCTL", "Neo4jCtlError", "Neo4jHome"]

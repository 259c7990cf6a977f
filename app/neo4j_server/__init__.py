"""A local Neo4j without Docker: assemble the jars, init a home, start, stop, neo4j-admin.

Used by `graphflags neo4j ...` and its thin wrapper `neo4j/neo4jctl` (make run/stop/import/
backup/restore), by loaders/ (offline import, dump, load), by the tests and the benchmarks.
"""

from app.neo4j_server.conf import ServerConf, listen_port, read_conf
from app.neo4j_server.home import DEV_HOME, Neo4jCtlError, Neo4jHome, assemble

__all__ = ["DEV_HOME", "Neo4jCtlError", "Neo4jHome", "ServerConf", "assemble", "listen_port", "read_conf"]

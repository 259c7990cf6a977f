import sys

from app.neo4j_server.cli import main

sys.exit(main())

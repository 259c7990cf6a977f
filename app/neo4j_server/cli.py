"""`graphflags neo4j COMMAND` / `neo4j/neo4jctl COMMAND`: the command line over home.py.

argparse rather than click: the neo4jctl wrapper may run this with a bare python3.
Exit codes: 0 ok, 1 failure, 2 bad usage, 3 Java/Maven missing, or (status) not running.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from app.neo4j_server.conf import ServerConf, conf_path
from app.neo4j_server.home import DEFAULT_START_TIMEOUT, Neo4jCtlError, Neo4jHome, assemble


def _size(text: str) -> str:  # Neo4j byte sizes: 512m, 1g, 1024k, 2048
    if not re.fullmatch(r"[0-9]+[kKmMgG]?", text):
        raise argparse.ArgumentTypeError(f"must look like 512m or 1g, got '{text}'")
    return text


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port, got '{text}'")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neo4jctl", description="A local Neo4j 5.26 server without Docker.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("assemble", help="copy the Neo4j jars into $NEO4J_LIB (default .local/neo4j/lib)")
    init = commands.add_parser("init", help="create or re-configure a home (keeps data and password)")
    init.add_argument("home", type=Path)
    defaults = ServerConf()
    init.add_argument("--bolt-port", type=_port, default=defaults.bolt_port)
    init.add_argument("--http-port", type=_port, default=defaults.http_port)
    init.add_argument("--heap", type=_size, default=defaults.heap)
    init.add_argument("--pagecache", type=_size, default=defaults.pagecache)
    init.add_argument(
        "--bolt-tls",
        action="store_true",
        help="Bolt only over TLS, with a self-signed certificate in HOME/certificates/bolt/public.crt",
    )
    start = commands.add_parser("start", help="start in the background and wait until Bolt answers a query")
    start.add_argument("home", type=Path)
    start.add_argument("--timeout", type=int, default=DEFAULT_START_TIMEOUT)
    for name, text in (
        ("stop", "stop cleanly (no error if not running)"),
        ("status", "exit 0 if running, 3 if not"),
        ("password", "print the password of the 'neo4j' user"),
    ):
        commands.add_parser(name, help=text).add_argument("home", type=Path)
    admin = commands.add_parser("admin", help="neo4j-admin ARGS for a home (e.g. database dump neo4j --to-path=DIR)")
    admin.add_argument("home", type=Path)
    admin.add_argument("arguments", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    try:
        return _run(options)
    except Neo4jCtlError as error:
        print(f"graphflags: {error}", file=sys.stderr)
        return error.exit_code


def _run(options: argparse.Namespace) -> int:
    command = options.command
    if command == "assemble":
        assemble()
    elif command == "init":
        home = Neo4jHome.init(
            options.home,
            ServerConf(options.bolt_port, options.http_port, options.heap, options.pagecache, options.bolt_tls),
        )
        print(
            f"graphflags: Neo4j home {home.path}: {home.bolt_uri}, http://127.0.0.1:{home.http_port}, "
            f"user neo4j, password in {home.path / 'password'}"
        )
        if options.bolt_tls:
            print(f"graphflags: Bolt requires TLS; trust {home.bolt_certificate} (GRAPHFLAGS_NEO4J_TRUSTED_CA)")
        if (pid := home.pid()) is not None:
            print(
                f"graphflags: the server (pid {pid}) keeps its old settings until: "
                f"neo4j/neo4jctl stop {home.path} && neo4j/neo4jctl start {home.path}"
            )
    elif command == "stop":
        # A home that was never initialised has nothing running: stop stays safe to call anywhere.
        if conf_path(options.home).is_file() and (home := Neo4jHome(options.home)).running():
            home.stop()
            print(f"graphflags: Neo4j stopped for {home.path}")
    elif command == "status":
        running = conf_path(options.home).is_file() and Neo4jHome(options.home).running()
        print(f"graphflags: Neo4j is {'running' if running else 'not running'} for {options.home}")
        return 0 if running else 3
    elif command == "start":
        Neo4jHome(options.home).start(options.timeout)
    elif command == "password":
        print(Neo4jHome(options.home).password)
    elif command == "admin":
        if not options.arguments:
            raise Neo4jCtlError("usage: neo4jctl admin HOME ARGS... (e.g. database dump neo4j --to-path=DIR)", 2)
        # Output streams straight through: neo4j-admin import reports progress as it goes.
        return Neo4jHome(options.home).admin(*options.arguments, check=False, capture=False).returncode
    return 0

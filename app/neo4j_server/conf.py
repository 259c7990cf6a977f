"""neo4j.conf for a local home: the one writer and the one reader.

Everything that needs a port or a setting of a home (the control commands, loaders, tests,
benchmarks) asks here instead of parsing the file itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CONF_RELATIVE = Path("conf") / "neo4j.conf"


@dataclass(frozen=True)
class ServerConf:
    bolt_port: int = 7687
    http_port: int = 7474
    heap: str = "512m"
    pagecache: str = "512m"
    bolt_tls: bool = False
    # A server that lives minutes (the test suite's): the JVM compiles with C1 only. C2's compiles
    # cost more CPU than they save before such a server is killed: measured here, a boot took
    # 13.4 s of CPU with C2 and 8.0 s without, and the next 2,000 small queries 9.2 s and 6.3 s.
    # A long-running server (make run, benchmarks, production) wants C2: leave this off.
    short_lived: bool = False


def conf_path(home: Path) -> Path:
    return home / CONF_RELATIVE


def read_conf(home: Path) -> dict[str, str]:
    """The settings of a home's neo4j.conf; the last line wins, as in Neo4j.

    Repeated keys (server.jvm.additional) keep only their last value: nothing here reads them.
    """
    settings: dict[str, str] = {}
    for line in conf_path(home).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        settings[key.strip()] = value.strip()
    return settings


def listen_port(home: Path, connector: str) -> int:
    """The port `connector` ("bolt" or "http") listens on."""
    address = read_conf(home).get(f"server.{connector}.listen_address")
    if address is None:
        raise KeyError(f"{conf_path(home)} sets no server.{connector}.listen_address")
    return int(address.rsplit(":", 1)[1])


def bolt_requires_tls(home: Path) -> bool:
    return read_conf(home).get("server.bolt.tls_level") == "REQUIRED"


def write_conf(home: Path, conf: ServerConf) -> None:
    """Write `home`'s neo4j.conf whole (atomically): re-running init changes ports and sizes."""
    text = _TEMPLATE.format(
        bolt=conf.bolt_port,
        http=conf.http_port,
        heap=conf.heap,
        pagecache=conf.pagecache,
        tls_level="REQUIRED" if conf.bolt_tls else "DISABLED",
    )
    if conf.short_lived:
        text += _SHORT_LIVED_TEMPLATE
    if conf.bolt_tls:
        text += _TLS_TEMPLATE.format(cert_dir=home / "certificates" / "bolt")
    path = conf_path(home)
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


_TEMPLATE = """\
# Written by `graphflags neo4j init` (neo4j/neo4jctl init); rerun init to change it (edits here are overwritten).

# Loopback only, and advertise the real ports: the HTTP discovery document and neo4j:// routing
# hand out the advertised addresses, which otherwise default to localhost:7687/7474.
server.default_listen_address=127.0.0.1
server.default_advertised_address=127.0.0.1
server.bolt.enabled=true
server.bolt.listen_address=127.0.0.1:{bolt}
server.bolt.advertised_address=127.0.0.1:{bolt}
server.bolt.tls_level={tls_level}
server.http.enabled=true
server.http.listen_address=127.0.0.1:{http}
server.http.advertised_address=127.0.0.1:{http}
server.https.enabled=false

dbms.security.auth_enabled=true
# Without this LOAD CSV may read any file under the home; the tarball's conf sets it too.
server.directories.import=import

# Fixed heap (initial = max): no resizing pauses, and memory use is known up front.
server.memory.heap.initial_size={heap}
server.memory.heap.max_size={heap}
server.memory.pagecache.size={pagecache}

# A runaway query in development should fail, not hang the service.
db.transaction.timeout=60s

# No phoning home.
dbms.usage_report.enabled=false
client.allow_telemetry=false

# The launcher adds nothing but -Xms/-Xmx to the server JVM; these come from the neo4j.conf of
# the official 5.26 tarball. The --add-opens let the page cache and transaction logs use direct
# buffers and native file calls (without them Neo4j logs "using fallback mode" warnings).
# -XX:+AlwaysPreTouch is left out on purpose: two dev/test servers should not commit their
# whole heap at start.
server.jvm.additional=-XX:+UseG1GC
server.jvm.additional=-XX:-OmitStackTraceInFastThrow
server.jvm.additional=-XX:+UnlockExperimentalVMOptions
server.jvm.additional=-XX:+TrustFinalNonStaticFields
server.jvm.additional=-XX:+DisableExplicitGC
server.jvm.additional=-Djdk.nio.maxCachedBufferSize=1024
server.jvm.additional=-Dio.netty.tryReflectionSetAccessible=true
server.jvm.additional=--add-opens=java.base/java.nio=ALL-UNNAMED
server.jvm.additional=--add-opens=java.base/java.io=ALL-UNNAMED
server.jvm.additional=--add-opens=java.base/sun.nio.ch=ALL-UNNAMED
server.jvm.additional=--enable-native-access=ALL-UNNAMED
server.jvm.additional=-Dlog4j2.disable.jmx=true

# Stop in about 2 s instead of 13 s: by default Bolt's Netty event loops each wait a 5 s quiet
# period on shutdown. Unsupported (internal) setting, fine for a dev server; tests stop and
# start servers often.
internal.dbms.bolt.netty_server_shutdown_quiet_period=0
"""

_SHORT_LIVED_TEMPLATE = """
# A short-lived server (tests): C1 only, since C2's compiles would not pay back before it stops.
# neo4j-admin commands run for this home take it too.
server.jvm.additional=-XX:TieredStopAtLevel=1
"""

_TLS_TEMPLATE = """
# Bolt over TLS only (init --bolt-tls): the self-signed certificate init made; clients need no
# certificate of their own (client_auth=NONE) and trust public.crt.
dbms.ssl.policy.bolt.enabled=true
dbms.ssl.policy.bolt.base_directory={cert_dir}
dbms.ssl.policy.bolt.private_key=private.key
dbms.ssl.policy.bolt.public_certificate=public.crt
dbms.ssl.policy.bolt.client_auth=NONE
"""

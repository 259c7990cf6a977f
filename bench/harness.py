"""What the benchmarks share, in one place: their Neo4j homes, the served service, load-tool runs
and the CPU they used, and the tables they write into bench/RESULTS.md.

- `bench_home`: a Neo4j home of a benchmark's own, on free ports (app.neo4j_server, as the tests do);
- `serve`: `graphflags serve` over it, returned once /readyz answers; `dev_token` for it; `stop`;
- `cpu_seconds`, `service_pids`, `watch`: the CPU a process tree and a load tool used (from /proc);
- `wrk`, `healthz` (the stack's no-op of the same run), `vegeta`, `vegeta_report`: one `Run` each;
- `ensure_orgs`: a complete tree of N orgs through POST /v1/orgs/bulk; `write_section`, `uptime`.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app.auth.tokens import mint_dev_token  # noqa: E402
from app.neo4j_server import Neo4jHome, ServerConf  # noqa: E402
from app.neo4j_server.conf import conf_path  # noqa: E402
from app.settings import Settings  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"
# `make bench` installs vegeta into .local/bin with `go install` when it is not on PATH.
VEGETA = shutil.which("vegeta") or str(REPO / ".local" / "bin" / "vegeta")
# Connections of a saturation run (wrk) and of the no-op beside it.
CONNECTIONS = 50


@dataclass
class Run:
    case: str
    rate: str
    sent: int
    ok: int
    errors: int
    rps: float
    p50: float
    p95: float
    p99: float
    load_cpu: float  # cores used by the load tool
    service_cpu: float  # cores used by the service (all workers)

    def row(self) -> str:
        return (
            f"| {self.case} | {self.rate} | {self.rps:,.0f} | {self.p50:.2f} | {self.p95:.2f} | {self.p99:.2f} "
            f"| {self.errors} | {self.load_cpu:.2f} | {self.service_cpu:.2f} |"
        )


def sh(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, text=True, **kwargs)


def measured_on() -> str:
    """When and on what a table was measured: "Measured <UTC time> on N cores (<CPU model>)"."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores ({cpu})"


def uptime() -> str:
    return sh("uptime", capture_output=True).stdout.strip().split("load average:")[1].strip()


# --- CPU accounting ------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds these processes have used so far (gone ones count 0)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (FileNotFoundError, ProcessLookupError):  # exited, or exiting as it is read
            pass
    return total


def service_pids(master: int) -> list[int]:
    """The serving process and its children (the uvicorn workers)."""
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return [master, *map(int, children)]


def watch(load: subprocess.Popen, pids: list[int]) -> tuple[float, float, float]:
    """Wait for a load tool to finish: (its CPU seconds, wall seconds, the CPU seconds `pids` used
    meanwhile). The tool's own figure is read while it runs: once reaped, /proc forgets it."""
    before = cpu_seconds(pids)
    started = time.monotonic()
    load_cpu = 0.0
    while load.poll() is None:
        load_cpu = max(load_cpu, cpu_seconds([load.pid]))
        time.sleep(0.2)
    return load_cpu, time.monotonic() - started, cpu_seconds(pids) - before


# --- a Neo4j home and the service over it ---------------------------------------------------------


def free_port() -> int:
    """A free port below the kernel's ephemeral range: a port the kernel picked for us (bind to
    0) may be handed to someone's outgoing connection before our server binds it, which on this
    busy machine happened (Neo4j: "Address already in use")."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, min(low, 32768))
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found below the ephemeral range")


def bench_home(path: Path, heap: str = "2g", pagecache: str = "2g") -> Neo4jHome:
    """A benchmark's own Neo4j home, started: created on free ports, or re-configured (its data and
    password kept). One already running is used as it is: re-writing its ports would strand it."""
    if conf_path(path).is_file() and (running := Neo4jHome(path)).running():
        return running
    home = Neo4jHome.init(
        path, ServerConf(bolt_port=free_port(), http_port=free_port(), heap=heap, pagecache=pagecache)
    )
    try:
        # Generous: a first start creates the system database, slowly on a busy machine.
        home.start(timeout=900)
    except BaseException:
        home.stop()  # a server still starting is not left behind
        raise
    return home


def serve(
    home: Neo4jHome,
    work: Path,
    workers: int | None = None,
    settings: dict[str, str] | None = None,
    *,
    name: str = "serve",
    nice: int = 0,
) -> tuple[subprocess.Popen, str]:
    """`graphflags serve` over `home` on a free port (it migrates first), once /readyz answers:
    the process and its base URL. Its log is `work`/`name`.log and its development key
    `work`/dev-jwt.key (`dev_token` signs with it). `workers` unset: the default, one per usable CPU.
    `settings`: extra GRAPHFLAGS_* variables for this run. `nice`: its scheduling niceness."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "NEO4J_URI": home.bolt_uri,
        "NEO4J_PASSWORD": home.password,
        "GRAPHFLAGS_PORT": str(port),
        "GRAPHFLAGS_WATCH_CATALOG": "false",
        "GRAPHFLAGS_LOG_LEVEL": "WARNING",
        "GRAPHFLAGS_JWT_DEV_KEY_FILE": str(work / "dev-jwt.key"),
    }
    env.pop("GRAPHFLAGS_WORKERS", None)
    if workers is not None:
        env["GRAPHFLAGS_WORKERS"] = str(workers)
    env.update(settings or {})
    log = work / f"{name}.log"
    niced = ["nice", "-n", str(nice)] if nice else []  # nice execs: the process is still the service's
    process = subprocess.Popen(
        [*niced, sys.executable, "-m", "app.cli", "serve"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base) as http:
            # It migrates first: minutes on a large store (bench/RESULTS.md, 100M orgs: 472 s).
            wait_ready(http, process, log, timeout=900)
    except BaseException:
        stop(process)
        raise
    return process, base


def wait_ready(
    http: httpx.Client, process: subprocess.Popen | None = None, log: Path | None = None, timeout: float = 120
) -> None:
    """Until the service at `http`'s base URL answers /readyz 200 (at most `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the service exited; see {log}")
        try:
            if http.get("/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit("the service did not become ready")


def stop(service: subprocess.Popen | None) -> None:
    if service is not None and service.poll() is None:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)


def dev_token(work: Path, subject: str, role: str, orgs: list[str], ttl: int = 86400) -> str:
    """A token the service `serve` started over `work` accepts."""
    return mint_dev_token(
        Settings(jwt_dev_key_file=work / "dev-jwt.key"), subject=subject, roles=[role], orgs=orgs, ttl=ttl
    )


def ensure_orgs(base: str, orgs: int, token: str) -> None:
    """A complete tree of `orgs` orgs o-0, o-1, ... (fan-out 10), loaded unless already there."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600) as http:
        if http.get(f"/v1/orgs/o-{orgs - 1}").status_code == 200:
            return
        print(f"loading {orgs:,} orgs through POST /v1/orgs/bulk ...", flush=True)
        rows = "".join(f"o-{n},{f'o-{(n - 1) // 10}' if n else ''}\n" for n in range(orgs))
        started = time.monotonic()
        response = http.post("/v1/orgs/bulk", content="id,parent\n" + rows, headers={"Content-Type": "text/csv"})
        response.raise_for_status()
        print(f"  {response.json()} in {time.monotonic() - started:.1f} s", flush=True)


# --- load tools -----------------------------------------------------------------------------------


def wrk(
    case: str,
    base: str,
    paths: list[str],
    token: str | None,
    duration: int,
    pids: list[int],
    connections: int = CONNECTIONS,
    method: str = "GET",
    bodies: list[str] | None = None,
    label: str = "saturation",
    tmp: Path = Path(tempfile.gettempdir()),
) -> tuple[Run, str]:
    """wrk -t1 at saturation over `paths` in turn: the Run (`label` in its rate column, wrk's p90 in
    its p95) and wrk's output. `bodies`: JSON bodies sent in turn with the paths (each request a POST)."""
    script = tmp / ("bench-" + re.sub(r"\W+", "-", case) + f"-{connections}.lua")
    listing = ",".join(f'"{path}"' for path in paths)
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else ""
    if bodies is None:
        script.write_text(
            f'local paths = {{{listing}}}\nlocal i = 0\nwrk.method = "{method}"\n{auth}'
            "request = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n"
        )
    else:
        contents = ",".join(f"[[{body}]]" for body in bodies)
        script.write_text(
            f'local paths = {{{listing}}}\nlocal bodies = {{{contents}}}\nlocal i = 0\nwrk.method = "POST"\n{auth}'
            'wrk.headers["Content-Type"] = "application/json"\n'
            "request = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i], nil, bodies[i])\nend\n"
        )
    load = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), base],
        stdout=subprocess.PIPE,
        text=True,
    )
    load_cpu, wall, service_cpu = watch(load, pids)
    out = load.stdout.read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {
        m.group(1): _ms(m.group(2), m.group(3)) for m in re.finditer(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)$", out, re.M)
    }
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    sent = int(re.search(r"(\d+) requests in", out).group(1))
    run = Run(
        case,
        label,
        sent,
        sent - errors,
        errors,
        rps,
        latency.get("50", 0),
        latency.get("90", 0),
        latency.get("99", 0),
        load_cpu / wall,
        service_cpu / wall,
    )
    return run, out


def healthz(base: str, duration: int, pids: list[int], case: str = "noop", label: str = "saturation") -> Run:
    """The no-op of the same run: `GET /healthz` (no auth, no database) under wrk at saturation,
    what the stack itself costs beside each measured request."""
    return wrk(case, base, ["/healthz"], None, duration, pids, label=label)[0]


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def vegeta_report(results: Path) -> dict:
    return json.loads(
        subprocess.run(
            [VEGETA, "report", "-type=json", str(results)], capture_output=True, text=True, check=True
        ).stdout
    )


def vegeta_run(case: str, rate: int, report: dict, load_cpu: float, wall: float, service_cpu: float) -> Run:
    """A Run from `vegeta report -type=json` and the CPU `watch` measured."""
    ok = sum(n for code, n in report["status_codes"].items() if code.startswith("2"))
    latency = {key: nanos / 1e6 for key, nanos in report["latencies"].items()}
    return Run(
        case,
        f"{rate:,}/s",
        report["requests"],
        ok,
        report["requests"] - ok,
        report["throughput"],
        latency["50th"],
        latency["95th"],
        latency["99th"],
        load_cpu / wall,
        service_cpu / wall,
    )


def vegeta(case: str, rate: int, requests: list[str], token: str, duration: int, pids: list[int]) -> Run:
    """A fixed rate with vegeta: requests evenly spaced (one every 1/rate s), each target used
    once in turn, and connections opened as needed, so a slow answer never holds back the
    next request. Used where h2load misleads: its --rps fires every connection's request in
    the same instant, and every connection walks the same URI list, so toggles (serialised
    writes) measured the wait behind a burst of 50, and 'uncached' lookups asked for each
    cold org 50 times (one database read, 49 answers from it). `requests`: "METHOD URL" each."""
    tmp = Path(tempfile.gettempdir())
    targets, results = tmp / f"{case}-targets.txt", tmp / f"{case}-{rate}.bin"
    targets.write_text("".join(f"{request}\n" for request in requests))
    load = subprocess.Popen(
        [
            VEGETA,
            "attack",
            f"-rate={rate}/s",
            f"-duration={duration}s",
            f"-targets={targets}",
            "-header",
            f"Authorization: Bearer {token}",
            f"-output={results}",
        ]
    )
    load_cpu, wall, service_cpu = watch(load, pids)
    return vegeta_run(case, rate, vegeta_report(results), load_cpu, wall, service_cpu)


# --- bench/RESULTS.md -----------------------------------------------------------------------------


def write_section(start: str, end: str, heading: str, table: str) -> None:
    """Put `table` (which begins with `start` and ends with `end`) into bench/RESULTS.md,
    replacing the previous one between the same markers; other sections are left alone."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if start in text:
        text = text[: text.index(start)] + table + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + f"\n\n## {heading}\n\n" + table + "\n"
    RESULTS.write_text(text)


def publish(table: str, start: str, end: str, heading: str, write: bool = True) -> None:
    """Print a benchmark's table and, unless `write` is off (--no-write), put it into bench/RESULTS.md."""
    print(table)
    if write:
        write_section(start, end, heading, table)

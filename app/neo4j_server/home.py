"""Run a local Neo4j 5.26 Community server from the jars Neo4j publishes on Maven Central.

`mvn dependency:copy-dependencies` on neo4j/pom.xml gives every jar the server needs
(`assemble`); Neo4j's own launcher (org.neo4j.server.startup.Neo4jCommand /
Neo4jAdminCommand) runs them, forks the real server JVM and manages its pid file. One
shared lib dir serves any number of *homes* (conf + data + logs + password), so a dev
server and disposable test servers run side by side. neo4j/README.md explains the choices.

Stdlib only at import time: `neo4j/neo4jctl` may run this with a bare python3 (`make stop`
before the virtualenv exists). The driver and `cryptography` are imported when needed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.neo4j_server.conf import ServerConf, bolt_requires_tls, conf_path, listen_port, write_conf

if TYPE_CHECKING:
    from app.settings import Settings

REPO = Path(__file__).resolve().parent.parent.parent
POM = REPO / "neo4j" / "pom.xml"
# The stamp lives inside the lib dir so that it moves with it when a new lib dir is swapped in.
STAMP_NAME = ".pom.sha256"
DEV_HOME = Path(".local/neo4j/home")
DEFAULT_START_TIMEOUT = 120  # the command line's; callers in Python (loaders) wait 300 s by default
JAVA_HINT = "Java 17+ is required to run the local Neo4j (apt-get install openjdk-17-jre-headless)"


class Neo4jCtlError(RuntimeError):
    """A command failed; `exit_code` is what neo4jctl exits with (3: a tool is missing / not running)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def lib_dir() -> Path:
    # Absolute: the server JVM is forked with this classpath, and a relative one would silently
    # depend on the caller's working directory.
    return Path(os.environ.get("NEO4J_LIB") or REPO / ".local" / "neo4j" / "lib").absolute()


def java_command() -> str:
    """Same choice as Neo4j's bin/neo4j: JAVA_HOME wins, else java on PATH. The launcher forks the
    server with the java it runs on, so this picks the server's Java too."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise Neo4jCtlError(JAVA_HINT, exit_code=3)
    return found


def require_java() -> str:
    java = java_command()
    shown = subprocess.run([java, "-XshowSettings:properties", "-version"], capture_output=True, text=True)
    # java.specification.version is "17", "21" ... (or "1.8" for Java 8, whose major 1 is < 17 too).
    found = re.search(r"java\.specification\.version = (\d+)", shown.stderr + shown.stdout)
    if found is None or int(found.group(1)) < 17:
        raise Neo4jCtlError(f"{JAVA_HINT}; found Java {found.group(1) if found else 'unknown'} at {java}", 3)
    return java


def _pom_sha() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _lib_is_current(lib: Path) -> bool:
    stamp = lib / STAMP_NAME
    return stamp.is_file() and stamp.read_text().strip() == _pom_sha()


def assemble() -> Path:
    """Copy the Neo4j jars into the lib dir, once per pom; a no-op when they are already there."""
    require_java()
    lib = lib_dir()
    if _lib_is_current(lib):
        return lib
    if shutil.which("mvn") is None:
        raise Neo4jCtlError("Maven is required to fetch the Neo4j jars (apt-get install maven)", exit_code=3)
    lib.parent.mkdir(parents=True, exist_ok=True)
    # `make run` and `make test` may assemble at the same moment: one Maven run at a time.
    with open(f"{lib}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _lib_is_current(lib):  # the other run did it while we waited
            return lib
        print(f"graphflags: fetching Neo4j jars from Maven Central into {lib} (first run only)", flush=True)
        # Copy into a fresh dir and swap it in: after a version bump, copying over the old dir
        # would leave two versions of every jar on the classpath.
        tmp, old = Path(f"{lib}.tmp.{os.getpid()}"), Path(f"{lib}.old.{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        done = subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-Dstyle.color=never",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={tmp}",
            ]
        )
        if done.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise Neo4jCtlError("Maven could not fetch the Neo4j jars (see its output above)")
        (tmp / STAMP_NAME).write_text(_pom_sha() + "\n")
        if lib.exists():
            lib.rename(old)
        tmp.rename(lib)
        shutil.rmtree(old, ignore_errors=True)
    return lib


def port_in_use(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@dataclass(frozen=True)
class Neo4jHome:
    """One server home: conf/ data/ logs/ plugins/ import/ run/ and its generated password."""

    path: Path

    def __post_init__(self) -> None:
        if not conf_path(self.path).is_file():
            raise Neo4jCtlError(f"{self.path} is not a Neo4j home (run: neo4j/neo4jctl init {self.path})")
        object.__setattr__(self, "path", self.path.resolve())

    # --- creating a home -------------------------------------------------------------------

    @classmethod
    def init(cls, path: Path, conf: ServerConf | None = None) -> Neo4jHome:
        """Create or re-configure a home (keeps its data and password)."""
        conf = conf or ServerConf()
        if conf.bolt_port == conf.http_port:
            raise Neo4jCtlError("--bolt-port and --http-port must differ", exit_code=2)
        assemble()
        for folder in ("conf", "data", "logs", "plugins", "import", "run"):
            (path / folder).mkdir(parents=True, exist_ok=True)
        path = path.resolve()
        if conf.bolt_tls:
            _ensure_bolt_cert(path / "certificates" / "bolt")
        write_conf(path, conf)
        home = cls(path)
        home._ensure_password_file()
        home._ensure_initial_password()
        return home

    def _ensure_password_file(self) -> None:
        password = self.path / "password"
        if not (password.is_file() and password.stat().st_size):
            # A database that already exists keeps its own password; a new one could not be applied.
            if (self.path / "data" / "databases" / "system").is_dir():
                raise Neo4jCtlError(
                    f"{password} is missing but the database already exists; "
                    f"restore the file or delete {self.path / 'data'}"
                )
            tmp = password.with_name(f"password.tmp.{os.getpid()}")
            # 128 random bits; created 600 so that it is never readable by others, not even briefly.
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
                handle.write(secrets.token_hex(16))
            os.replace(tmp, password)
        password.chmod(0o600)

    def _ensure_initial_password(self) -> None:
        # set-initial-password writes data/dbms/auth.ini, which Neo4j reads only when it creates the
        # system database on first start; once either of them exists there is nothing to do.
        data = self.path / "data"
        if (data / "databases" / "system").is_dir() or (data / "dbms" / "auth.ini").is_file():
            return
        done = self._launcher(
            "Neo4jAdminCommand", "dbms", "set-initial-password", self.password, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise Neo4jCtlError(f"could not set the initial password for {self.path}:\n{done.stdout}{done.stderr}")

    # --- what a home is --------------------------------------------------------------------

    @property
    def bolt_port(self) -> int:
        return listen_port(self.path, "bolt")

    @property
    def http_port(self) -> int:
        return listen_port(self.path, "http")

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def password(self) -> str:
        password = self.path / "password"
        if not password.is_file():
            raise Neo4jCtlError(f"{password} is missing; run: neo4j/neo4jctl init {self.path}")
        return password.read_text().strip()

    @property
    def bolt_certificate(self) -> Path:
        return self.path / "certificates" / "bolt" / "public.crt"

    def settings(self, base: Settings) -> Settings:
        """`base` pointed at this home's server."""
        from pydantic import SecretStr

        return base.model_copy(
            update={
                "neo4j_uri": self.bolt_uri,
                "neo4j_user": "neo4j",
                "neo4j_password": SecretStr(self.password),
                "neo4j_database": "neo4j",
            }
        )

    def database_dir(self) -> Path:
        return self.path / "data" / "databases" / "neo4j"

    def store_bytes(self) -> int:
        """Bytes on disk of the default database's store files (transaction logs not counted)."""
        return _folder_bytes(self.database_dir())

    def transaction_log_bytes(self) -> int:
        # Preallocated in 256 MiB files, so small databases look big if these are counted.
        return _folder_bytes(self.path / "data" / "transactions" / "neo4j")

    def pid(self) -> int | None:
        """The server's pid if this home's server is alive. The launcher trusts any live process
        with the pid from run/neo4j.pid; after a reboot that pid may belong to something else, so
        also check that the process is Neo4j started for this very home, and drop a stale file."""
        pidfile = self.path / "run" / "neo4j.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            pid = int(pidfile.read_text().strip())
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if (
                any(b"EntryPoint" in argument for argument in arguments)
                and f"--home-dir={self.path}".encode() in arguments
            ):
                return pid
        pidfile.unlink(missing_ok=True)
        return None

    def running(self) -> bool:
        return self.pid() is not None

    # --- start, stop, kill, admin ----------------------------------------------------------

    def start(self, timeout: float = 300) -> None:
        """Start in the background and return once Bolt answers `RETURN 1` with the password."""
        assemble()
        began = time.monotonic()
        deadline = began + timeout
        pid = self.pid()
        if pid is None:
            pid = self._launch(deadline, timeout)
        try:
            self._wait_until_answering(pid, deadline)
        except Neo4jCtlError as error:
            raise Neo4jCtlError(f"{error}\n{self._log_tails()}") from None
        print(
            f"graphflags: Neo4j is up for {self.path}: {self.bolt_uri} (pid {pid}, {time.monotonic() - began:.0f} s)",
            flush=True,
        )

    def _launch(self, deadline: float, timeout: float) -> int:
        # Fail now rather than time out later (or, worse, find another server answering our port).
        for port in (self.bolt_port, self.http_port):
            if port_in_use(port):
                raise Neo4jCtlError(
                    f"port {port} on 127.0.0.1 is already in use; pick others with: "
                    f"neo4j/neo4jctl init {self.path} --bolt-port N --http-port N"
                )
        self.password  # noqa: B018 - raises when the file is missing
        self._ensure_initial_password()
        # Neo4j warns below 40000 open files; take what the hard limit allows (the server inherits it).
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        # The launcher forks the server, writes run/neo4j.pid and returns once the server has started
        # or failed, with no time limit of its own: keep ours. Its chatter goes to a file shown on failure.
        # HEAP_SIZE would override the conf's heap for the server, so it is dropped here.
        with open(self.path / "logs" / "launcher.log", "w") as log:
            try:
                self._launcher(
                    "Neo4jCommand",
                    "start",
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    drop=("HEAP_SIZE",),
                    timeout=max(1.0, deadline - time.monotonic()),
                    check=True,
                )
            except subprocess.TimeoutExpired:
                raise Neo4jCtlError(
                    f"Neo4j for {self.path} did not start within {timeout:.0f} s (it may still be "
                    f"starting; stop it with: neo4j/neo4jctl stop {self.path})\n"
                    f"{self._log_tails()}"
                ) from None
            except subprocess.CalledProcessError as error:
                raise Neo4jCtlError(
                    f"Neo4j did not start for {self.path} (launcher exit code {error.returncode})\n{self._log_tails()}"
                ) from None
            finally:
                with contextlib.suppress(ValueError, OSError):
                    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        pid = self.pid()
        if pid is None:
            raise Neo4jCtlError(
                f"Neo4j started but wrote no usable pid file in {self.path / 'run'}\n{self._log_tails()}"
            )
        return pid

    def _wait_until_answering(self, pid: int, deadline: float) -> None:
        """With the driver: a real `RETURN 1` over neo4j:// as user neo4j, which also proves the
        password and the advertised address (routing uses it). Without it: the Bolt port accepts
        and the HTTP discovery document answers 200."""
        last = "no answer yet"
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                raise Neo4jCtlError(f"Neo4j for {self.path} exited during start-up") from None
            try:
                if self._answers():
                    return
            except Exception as error:
                if type(error).__name__ == "AuthError":
                    raise Neo4jCtlError(
                        f"Neo4j for {self.path} rejects the password in {self.path / 'password'}"
                    ) from None
                last = f"{type(error).__name__}: {error}"
            time.sleep(0.25)
        raise Neo4jCtlError(
            f"Neo4j for {self.path} did not answer in time; last error: {last} "
            f"(still running as pid {pid}; stop it with: neo4j/neo4jctl stop {self.path})"
        )

    def _answers(self) -> bool:
        try:
            from neo4j import GraphDatabase
        except ImportError:
            socket.create_connection(("127.0.0.1", self.bolt_port), timeout=2).close()
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/", timeout=2) as response:
                return response.status == 200
        # A --bolt-tls home refuses plain Bolt. This only asks "is it up", so it accepts the
        # self-signed certificate unchecked (+ssc); the service checks it against the CA file.
        scheme = "neo4j+ssc" if bolt_requires_tls(self.path) else "neo4j"
        with GraphDatabase.driver(
            f"{scheme}://127.0.0.1:{self.bolt_port}",
            auth=("neo4j", self.password),
            connection_timeout=2,
            connection_acquisition_timeout=5,
        ) as driver:
            records, _, _ = driver.execute_query("RETURN 1 AS one")
            return records[0]["one"] == 1

    def stop(self) -> None:
        """Stop cleanly; no error if not running. The launcher sends SIGTERM and waits
        (NEO4J_SHUTDOWN_TIMEOUT, default 120 s) for a checkpoint, and removes the pid file."""
        pid = self.pid()
        if pid is None:
            return
        done = self._launcher("Neo4jCommand", "stop", capture_output=True, text=True, drop=("HEAP_SIZE",))
        if done.returncode != 0:
            raise Neo4jCtlError(f"Neo4j (pid {pid}) did not stop cleanly for {self.path}:\n{done.stdout}{done.stderr}")

    def kill(self, timeout: float = 10) -> None:
        """SIGKILL the server (a crash, for tests) and wait until the process is gone."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise Neo4jCtlError(f"Neo4j (pid {pid}) survived SIGKILL for {timeout} s")

    def admin(
        self, *arguments: str, heap: str | None = None, check: bool = True, capture: bool = True
    ) -> subprocess.CompletedProcess:
        """neo4j-admin ARGS for this home; `heap` sizes the admin JVM (HEAP_SIZE, else the caller's
        HEAP_SIZE stays). `capture=False` lets its progress stream to the terminal."""
        assemble()
        env = {"HEAP_SIZE": heap} if heap else {}
        done = self._launcher("Neo4jAdminCommand", *arguments, capture_output=capture, text=True, env=env)
        if check and done.returncode != 0:
            raise Neo4jCtlError(
                f"neo4j-admin {' '.join(arguments)} failed for {self.path} ({done.returncode}):\n"
                f"{(done.stdout or '')[-4000:]}\n{(done.stderr or '')[-4000:]}"
            )
        return done

    def _launcher(
        self,
        main: str,
        *arguments: str,
        env: dict[str, str] | None = None,
        drop: tuple[str, ...] = (),
        check: bool = False,
        **run_options,
    ) -> subprocess.CompletedProcess:
        """One of Neo4j's launcher entry points for this home. NEO4J_HOME/NEO4J_CONF are set here,
        never inherited: a stray value would point at another server. JAVA_OPTS is dropped because
        the launcher would use it *instead of* the conf's heap and server.jvm.additional. The
        launcher JVM itself only forks and waits: a small heap and the quick-start JIT."""
        environment = {key: value for key, value in os.environ.items() if key not in ("JAVA_OPTS", *drop)}
        environment.update(env or {}, NEO4J_HOME=str(self.path), NEO4J_CONF=str(self.path / "conf"))
        command = [
            java_command(),
            "-Xmx128m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            f"{lib_dir()}/*",
            f"-Dbasedir={self.path}",
            f"org.neo4j.server.startup.{main}",
            *arguments,
        ]
        return subprocess.run(command, env=environment, check=check, **run_options)

    def _log_tails(self) -> str:
        tails = []
        for log in sorted((self.path / "logs").glob("*.log")):
            if log.stat().st_size:
                tails.append(f"----- tail of {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-25:]))
        return "\n".join(tails)


def _ensure_bolt_cert(folder: Path) -> None:
    """A self-signed certificate for 127.0.0.1/localhost, made once per home (kept across inits)."""
    if (folder / "private.key").is_file() and (folder / "public.crt").is_file():
        return
    from app.tls import write_dev_cert

    for sub in ("trusted", "revoked"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    write_dev_cert(
        folder,
        days=825,
        hosts=("127.0.0.1", "localhost"),
        cert_name="public.crt",
        key_name="private.key",
        common_name="graphflags local Neo4j",
        rsa=True,
    )
    (folder / "public.crt").chmod(0o644)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total

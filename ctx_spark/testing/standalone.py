"""A real Spark standalone cluster on 127.0.0.1, from the pip-installed pyspark.

Used by tests/test_cluster.py and bench/sizing.py. The master and each worker are
``spark-class`` JVMs started in their own sessions (process groups), with their logs, work
directories and Spark configuration directory under one temporary root, on free ports. A
worker launches executor JVMs, which launch Python daemons in process groups of their own
(pyspark's daemon calls ``setpgid``), so stopping or killing a worker goes by its whole
process tree, read from ``/proc``, not only by its group. :meth:`StandaloneCluster.stop`
terminates everything it started (SIGTERM, then SIGKILL) and reports any process left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Optional

import pyspark

from ctx_spark.testing.processes import alive, cmdline, process_tree, signal_all, stat, tail

__all__ = ["EXECUTOR_CLASS", "StandaloneCluster", "app_json", "cmdline", "free_port", "process_tree"]

SPARK_HOME = Path(pyspark.__file__).resolve().parent
SPARK_CLASS = SPARK_HOME / "bin" / "spark-class"
SPARK_SUBMIT = SPARK_HOME / "bin" / "spark-submit"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"
HOST = "127.0.0.1"
#: The default ``conf`` of spark-submit: no settings beyond the cluster's own (read-only).
NO_CONF: Mapping[str, str] = MappingProxyType({})


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Daemon:
    """One process we started (master, worker or spark-submit) and its log file."""

    name: str
    process: subprocess.Popen
    log: Path
    start: int = 0

    def __post_init__(self) -> None:
        info = stat(self.process.pid)
        self.start = info[2] if info else 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def tree(self) -> list[tuple[int, int]]:
        """This process and its live descendants (pid, start time)."""
        return process_tree(self.pid) if self.process.poll() is None else []

    def group(self) -> list[tuple[int, int]]:
        """Live processes in this daemon's process group (it leads its own session)."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                if int(fields[3]) == self.pid and fields[0] != "Z":
                    found.append((int(entry), int(fields[19])))
        return found

    def stop(self, sig: int = signal.SIGTERM, grace: float = 15.0) -> list[int]:
        """Send ``sig`` to the whole tree and group, SIGKILL what is left after ``grace``
        seconds; reap the process. Returns the pids still alive at the end (none expected)."""
        everything = list(dict.fromkeys(self.tree() + self.group()))
        signal_all(everything, sig)
        deadline = time.monotonic() + (grace if sig != signal.SIGKILL else 5.0)
        while alive(everything) and time.monotonic() < deadline:
            self.process.poll()
            time.sleep(0.1)
        if alive(everything):
            signal_all(everything, signal.SIGKILL)
            deadline = time.monotonic() + 10.0
            while alive(everything) and time.monotonic() < deadline:
                self.process.poll()
                time.sleep(0.1)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        return alive(everything)


@dataclass
class StandaloneCluster:
    """A master and workers on 127.0.0.1 with everything under ``root``.

    Attributes:
        worker_cores: cores each worker offers (``--cores``).
        worker_memory: memory each worker offers to executors (``--memory``, e.g. "2g").
        daemon_memory: heap of the master and worker JVMs themselves (SPARK_DAEMON_MEMORY).
    """

    root: Path
    worker_cores: int = 2
    worker_memory: str = "2g"
    daemon_memory: str = "256m"
    master_port: int = 0
    master_ui_port: int = 0
    master: Optional[Daemon] = None
    workers: list[Daemon] = field(default_factory=list)
    _n_workers: int = 0

    @property
    def url(self) -> str:
        """The master URL for ``spark-submit --master``."""
        return f"spark://{HOST}:{self.master_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.master_ui_port}"

    def env(self, extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
        """Environment of every process of the cluster and of spark-submit."""
        env = dict(os.environ)
        for key in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "SPARK_MASTER_HOST", "SPARK_CONF_DIR"):
            env.pop(key, None)
        conf_dir = self.root / "conf"
        conf_dir.mkdir(parents=True, exist_ok=True)
        env.update(
            SPARK_HOME=str(SPARK_HOME),
            SPARK_CONF_DIR=str(conf_dir),  # empty: no stray spark-defaults.conf
            SPARK_LOCAL_IP=HOST,
            SPARK_LOCAL_HOSTNAME="localhost",
            SPARK_LOG_DIR=str(self.root / "logs"),
            SPARK_WORKER_DIR=str(self.root / "work"),
            SPARK_DAEMON_MEMORY=self.daemon_memory,
            PYSPARK_PYTHON=sys.executable,
            PYSPARK_DRIVER_PYTHON=sys.executable,
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        env.update(extra or {})
        return env

    def _spawn(
        self, name: str, command: list[str], cwd: Optional[Path] = None, env: Optional[Mapping[str, str]] = None
    ) -> Daemon:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{name}.log"
        with open(log, "ab") as handle:
            process = subprocess.Popen(
                command,
                cwd=str(cwd or self.root),
                env=dict(env or self.env()),
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return Daemon(name, process, log)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, workers: int = 1, timeout: float = 180.0) -> StandaloneCluster:
        """Start the master and ``workers`` workers; return when they are all ALIVE."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.master_port, self.master_ui_port = free_port(), free_port()
        self.master = self._spawn(
            "master",
            [
                str(SPARK_CLASS),
                MASTER_CLASS,
                "--host",
                HOST,
                "--port",
                str(self.master_port),
                "--webui-port",
                str(self.master_ui_port),
            ],
        )
        self.wait_for(lambda: self.state() is not None, timeout, "the master's web UI")
        for _ in range(workers):
            self.start_worker(timeout=timeout)
        return self

    def start_worker(self, timeout: float = 180.0) -> Daemon:
        """Start one more worker; return once the master lists it ALIVE."""
        self._n_workers += 1
        name = f"worker-{self._n_workers}"
        work = self.root / "work" / name
        work.mkdir(parents=True, exist_ok=True)
        before = {w["id"] for w in self.alive_workers()}
        daemon = self._spawn(
            name,
            [
                str(SPARK_CLASS),
                WORKER_CLASS,
                self.url,
                "--host",
                HOST,
                "--port",
                "0",
                "--webui-port",
                str(free_port()),
                "--cores",
                str(self.worker_cores),
                "--memory",
                self.worker_memory,
                "--work-dir",
                str(work),
            ],
        )
        self.workers.append(daemon)
        self.wait_for(
            lambda: {w["id"] for w in self.alive_workers()} - before,
            timeout,
            f"{name} to register with the master",
            watch=daemon,
        )
        return daemon

    def kill_worker(self, daemon: Daemon) -> list[tuple[int, str]]:
        """SIGKILL a worker with everything under it (executors, Python workers) at once,
        as a machine failure would. Returns the (pid, command line) of what was killed."""
        tree = list(dict.fromkeys(daemon.tree() + daemon.group()))
        killed = [(pid, cmdline(pid)) for pid, _ in tree]
        left = daemon.stop(signal.SIGKILL)
        if left:
            raise RuntimeError(f"processes of {daemon.name} survived SIGKILL: {left}")
        return killed

    def stop(self) -> list[int]:
        """Stop the workers, then the master (SIGTERM, SIGKILL after a grace period).

        Returns the pids that could not be stopped (empty unless something is wrong)."""
        left: list[int] = []
        for daemon in reversed(self.workers):
            left += daemon.stop()
        if self.master is not None:
            left += self.master.stop()
        return left

    # --- state ----------------------------------------------------------------------------

    def state(self) -> Optional[dict[str, Any]]:
        """The master's JSON state (workers, apps), None while it does not answer."""
        if not self.master_ui_port:
            return None
        try:
            with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=5) as response:
                return json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def alive_workers(self) -> list[dict[str, Any]]:
        """The master's ALIVE workers (dicts with id, host, port, cores, memory...)."""
        state = self.state() or {}
        return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]

    def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float,
        what: str,
        watch: Optional[Daemon] = None,
        interval: float = 0.25,
    ) -> Any:
        """Poll ``predicate`` until it returns something truthy; raise with the logs when
        ``timeout`` seconds pass or a watched process (or the master) exits first."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            for daemon in filter(None, (self.master, watch)):
                if daemon.process.poll() is not None:
                    raise RuntimeError(
                        f"{daemon.name} exited ({daemon.process.returncode}) while waiting for {what}\n{self.logs()}"
                    )
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.logs()}")
            time.sleep(interval)

    def logs(self, chars: int = 2500) -> str:
        """Tails of the master's, workers' and executors' logs, for failure messages."""
        parts = []
        for daemon in filter(None, [self.master, *self.workers]):
            parts.append(f"--- {daemon.name} ({daemon.log}) ---\n{tail(daemon.log, chars)}")
        for stderr in sorted((self.root / "work").glob("*/app-*/*/stderr")):
            parts.append(f"--- executor {stderr.relative_to(self.root)} ---\n{tail(stderr, chars)}")
        return "\n".join(parts)

    # --- spark-submit ---------------------------------------------------------------------

    def submit_command(
        self, script: Path, args: Sequence[str], conf: Mapping[str, str] = NO_CONF, master: Optional[str] = None
    ) -> list[str]:
        """A spark-submit command line for ``script`` on this cluster (client deploy mode)."""
        settings = {
            "spark.driver.host": HOST,
            "spark.driver.bindAddress": HOST,
            "spark.driver.memory": "1g",
            "spark.executor.memory": "1g",
            "spark.ui.enabled": "false",
            **dict(conf),
        }
        command = [str(SPARK_SUBMIT), "--master", master or self.url, "--deploy-mode", "client"]
        for key, value in settings.items():
            command += ["--conf", f"{key}={value}"]
        return command + [str(script), *args]

    def submit(
        self,
        name: str,
        script: Path,
        args: Sequence[str],
        conf: Mapping[str, str] = NO_CONF,
        cwd: Optional[Path] = None,
        master: Optional[str] = None,
    ) -> Daemon:
        """Start spark-submit in the background (its own session); its output goes to
        ``logs/<name>.log``. Wait with :meth:`finish`."""
        return self._spawn(name, self.submit_command(script, args, conf, master), cwd=cwd)

    def finish(self, driver: Daemon, timeout: float = 600.0) -> int:
        """Wait for a submitted driver; on timeout stop its whole tree and raise."""
        try:
            return driver.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            driver.stop(signal.SIGKILL)
            raise TimeoutError(
                f"{driver.name} did not finish in {timeout:.0f} s\n{tail(driver.log)}\n{self.logs()}"
            ) from None

    def run(
        self,
        name: str,
        script: Path,
        args: Sequence[str],
        conf: Mapping[str, str] = NO_CONF,
        cwd: Optional[Path] = None,
        timeout: float = 600.0,
        master: Optional[str] = None,
    ) -> tuple[int, str]:
        """Submit and wait; returns (exit code, the driver's output)."""
        driver = self.submit(name, script, args, conf, cwd=cwd, master=master)
        code = self.finish(driver, timeout)
        return code, driver.log.read_text(errors="replace")


def app_json(ui_port: int, suffix: str = "") -> Any:
    """GET the driver's monitoring REST API (``/api/v1/applications[/<id>/...]``), or None
    while the driver's UI does not answer."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{ui_port}/api/v1/applications{suffix}", timeout=5) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None

"""Running `xnai` as a child process for the benchmarks (python3 stdlib only).

Server starts `xnai serve` on an ephemeral loopback port, learns the port from
the line `xnai: serving on http://127.0.0.1:PORT` on its stdout, and offers
plain HTTP GETs over one keep-alive connection, /proc readings (RSS) and a
SIGTERM stop. Used by run-benchmarks and recall_eval.py.
"""

import http.client
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.parse

SERVING_RE = re.compile(r"xnai: serving on http://(\[[^\]]+\]|[^:/\s]+):(\d+)")


class XnaiError(RuntimeError):
    pass


def proc_status_kb(pid, field):
    """A `field` (e.g. VmRSS, VmHWM) of /proc/PID/status in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_cli(xnai, data_dir, args, timeout=3600):
    """Runs `xnai --data DIR ARGS...`; returns stdout. XnaiError on failure."""
    cmd = [xnai, "--data", str(data_dir), "--log-level", "warn"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise XnaiError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p.stdout


class Server:
    """One `xnai serve` child process. Use as a context manager."""

    def __init__(self, xnai, data_dir, log_path, extra_args=()):
        self.xnai = str(xnai)
        self.data_dir = str(data_dir)
        self.log_path = str(log_path)
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self.spawn_time = None
        self.ready_seconds = None
        self._conn = None
        self._lines = queue.Queue()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=30.0):
        """Spawns the server and waits for the first 200 from /ready.

        Returns seconds from spawn to that 200 (also in self.ready_seconds).
        """
        cmd = [self.xnai, "--data", self.data_dir, "--log-level", "warn", "serve",
               "--listen", "127.0.0.1:0"] + self.extra_args
        log = open(self.log_path, "ab")
        self.spawn_time = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        deadline = self.spawn_time + timeout
        while self.port is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise XnaiError(f"no 'serving on' line within {timeout}s; see {self.log_path}")
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise XnaiError(f"xnai serve exited {self.proc.returncode} before serving; "
                                    f"see {self.log_path}")
                continue
            if line is None:
                self.proc.wait(timeout=5)
                raise XnaiError(f"xnai serve exited {self.proc.returncode} before serving; "
                                f"see {self.log_path}")
            m = SERVING_RE.search(line)
            if m:
                self.port = int(m.group(2))
        while True:
            try:
                status, _ = self.get("/ready", timeout=2)
                if status == 200:
                    self.ready_seconds = time.monotonic() - self.spawn_time
                    return self.ready_seconds
            except (OSError, http.client.HTTPException):
                self._drop_conn()
            if self.proc.poll() is not None:
                raise XnaiError(f"xnai serve exited {self.proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise XnaiError(f"/ready not 200 within {timeout}s; see {self.log_path}")
            time.sleep(0.002)

    def _pump_stdout(self):
        for raw in self.proc.stdout:
            self._lines.put(raw.decode("utf-8", "replace"))
        self._lines.put(None)

    def _drop_conn(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def get(self, path, params=None, timeout=30):
        """GET over a keep-alive connection: (status, body bytes)."""
        if params:
            path = path + "?" + urllib.parse.urlencode(params)
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self._conn.request("GET", path)
                resp = self._conn.getresponse()
                body = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self._drop_conn()
                return resp.status, body
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A keep-alive connection the server closed: retry once on a new one.
                self._drop_conn()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def get_json(self, path, params=None):
        status, body = self.get(path, params)
        if status != 200:
            raise XnaiError(f"GET {path} {params or ''} -> {status}: {body[:300]!r}")
        return json.loads(body)

    def rss_kb(self):
        return proc_status_kb(self.proc.pid, "VmRSS")

    def hwm_kb(self):
        return proc_status_kb(self.proc.pid, "VmHWM")

    def stop(self, timeout=15.0):
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit code (or None)."""
        self._drop_conn()
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9


def check_executable(path):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise XnaiError(f"{path} is not an executable; run `make build` first")

"""Test harness for the xnai integration tests: the real binary, real sockets.

Only the Python standard library is used. The binary comes from the XNAI_BIN
environment variable (ctest sets it to $<TARGET_FILE:xnai>); when unset, the
usual build directories are searched so a developer can run
`python3 -m unittest -v test_health` by hand from tests/integration.

Every server runs on 127.0.0.1 with port 0 (the kernel picks a free port; the
port is parsed from the one ready line the server prints), in its own
temporary data directory, with the current directory set to a temporary
folder so no ./xnai.toml of the developer is picked up, and with every XNAI_*
variable of the caller's environment removed.
"""

import http.client
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
import threading
import time
import unittest
import uuid

READY_RE = re.compile(r"^xnai: serving on http://(\[[^\]]+\]|[^:/]+):(\d+)\s*$")
REQUIRED_HIT_KEYS = {"chunk_id", "document_id", "source", "title", "text", "snippet", "score"}


def find_binary():
    path = os.environ.get("XNAI_BIN")
    if path:
        return path
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    for build in ("build", "build-it"):
        candidate = os.path.join(root, build, "xnai")
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("xnai binary not found: set XNAI_BIN or build it (make build)")


XNAI_BIN = find_binary()


def clean_env(extra=None):
    """The caller's environment without XNAI_* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XNAI_")}
    env.update(extra or {})
    return env


# --- HTTP ---------------------------------------------------------------------


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # {lowercase name: value}
        self.body = body        # bytes

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        body = self.text
        if len(body) > 800:
            body = body[:800] + "..."
        return "<HTTP %d %s %s>" % (self.status, self.reason, body)


def read_response(conn):
    r = conn.getresponse()
    body = r.read()
    headers = {k.lower(): v for k, v in r.getheaders()}
    return Response(r.status, r.reason, headers, body)


def encode_body(body=None, json_body=None, headers=None):
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    return body, headers


def multipart(fields=None, files=None, boundary=None):
    """Builds a multipart/form-data body by hand.

    fields: {name: str}; files: [(field name, filename, bytes, content type)].
    Returns (body bytes, content-type header value)."""
    boundary = boundary or "xnaiboundary" + uuid.uuid4().hex
    out = []
    for name, value in (fields or {}).items():
        out.append(b"--" + boundary.encode() + b"\r\n")
        out.append(('Content-Disposition: form-data; name="%s"\r\n\r\n' % name).encode())
        out.append(value.encode() if isinstance(value, str) else value)
        out.append(b"\r\n")
    for field, filename, data, ctype in files or []:
        out.append(b"--" + boundary.encode() + b"\r\n")
        out.append(('Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    % (field, filename)).encode())
        out.append(("Content-Type: %s\r\n\r\n" % ctype).encode())
        out.append(data)
        out.append(b"\r\n")
    out.append(b"--" + boundary.encode() + b"--\r\n")
    return b"".join(out), "multipart/form-data; boundary=" + boundary


# --- documents ----------------------------------------------------------------


def make_pdf(text):
    """A minimal valid one-page PDF showing `text` (ASCII) in Helvetica,
    with a correct cross-reference table."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = ("BT /F1 12 Tf 72 720 Td (%s) Tj ET" % escaped).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


PNG_BYTES = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
             b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01"
             b"\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def unique_word(prefix="zq"):
    """A word no test document shares by accident (letters only, so every
    tokenizer keeps it whole)."""
    return prefix + "".join(random.choice("bcdfghjklmnpqrstvwxz") for _ in range(10))


# --- server -------------------------------------------------------------------


class ServerProcess:
    """One `xnai serve` process. Use start(); stop() sends SIGTERM and returns
    the exit code."""

    def __init__(self, data_dir, work_dir, args=(), env=None, listen="127.0.0.1:0",
                 log_path=None):
        self.data_dir = data_dir
        self.work_dir = work_dir
        self.args = list(args)
        self.env = clean_env(env)
        self.listen = listen
        self.log_path = log_path or os.path.join(work_dir, "server-%s.log" % uuid.uuid4().hex[:8])
        self.proc = None
        self.host = None
        self.port = None
        self.ready_line = None
        self.extra_stdout = []
        self.returncode = None

    # The command line, as documented: xnai serve --listen ADDR --data DIR ...
    def command(self):
        return [XNAI_BIN, "serve", "--listen", self.listen, "--data", self.data_dir] + self.args

    def start(self, timeout=15.0):
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE,
                                     stderr=self._log_file, stdin=subprocess.DEVNULL,
                                     cwd=self.work_dir, env=self.env)
        lines = []
        got_line = threading.Event()

        def reader():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", errors="replace")
                lines.append(line)
                got_line.set()
            got_line.set()

        self._reader = threading.Thread(target=reader, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got_line.wait(0.05)
            got_line.clear()
            if lines:
                break
            if self.proc.poll() is not None:
                self._reader.join(2)
                if lines:
                    break
                raise AssertionError("xnai serve exited with %s before it was ready\n%s"
                                     % (self.proc.returncode, self.log_tail()))
        if not lines:
            self.kill()
            raise AssertionError("xnai serve printed no ready line within %.0fs\n%s"
                                 % (timeout, self.log_tail()))
        self.ready_line = lines[0]
        m = READY_RE.match(self.ready_line)
        if not m:
            self.kill()
            raise AssertionError("unexpected ready line %r (want 'xnai: serving on "
                                 "http://HOST:PORT')" % self.ready_line)
        self.host = m.group(1).strip("[]")
        self.port = int(m.group(2))
        self._stdout_lines = lines
        return self

    def stdout_after_ready(self):
        return self._stdout_lines[1:]

    def wait_ready(self, timeout=15.0):
        """Polls /ready until 200; returns the seconds it took."""
        start = time.monotonic()
        last = None
        while time.monotonic() - start < timeout:
            try:
                last = self.request("GET", "/ready", timeout=5)
                if last.status == 200:
                    return time.monotonic() - start
                if last.status != 503:
                    raise AssertionError("/ready answered %r" % last)
            except OSError as e:
                last = e
            time.sleep(0.02)
        raise AssertionError("/ready not 200 within %.0fs (last: %r)\n%s"
                             % (timeout, last, self.log_tail()))

    def connection(self, timeout=30):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, json_body=None, headers=None, timeout=30):
        body, headers = encode_body(body, json_body, headers)
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            return read_response(conn)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post_json(self, path, obj, **kw):
        return self.request("POST", path, json_body=obj, **kw)

    def upload(self, files, fields=None, path="/api/documents", headers=None):
        body, ctype = multipart(fields, files)
        h = {"Content-Type": ctype}
        h.update(headers or {})
        return self.request("POST", path, body=body, headers=h)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_events(self):
        """The JSON log lines as dicts (lines that are not JSON are skipped)."""
        events = []
        for line in self.log().splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                events.append(obj)
        return events

    def log_tail(self, lines=40):
        text = self.log().splitlines()[-lines:]
        return "--- server log (last %d lines) ---\n%s" % (len(text), "\n".join(text))

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Sends `sig` and waits; returns the exit code (-N when killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("xnai serve did not exit within %.0fs of signal %d\n%s"
                                     % (timeout, sig, self.log_tail()))
        self._finish()
        return self.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._finish()

    def _finish(self):
        self.returncode = self.proc.returncode
        if getattr(self, "_reader", None):
            self._reader.join(2)
        if self.proc.stdout:
            self.proc.stdout.close()
        if not self._log_file.closed:
            self._log_file.close()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None


def run_cli(args, data_dir=None, env=None, cwd=None, timeout=60, input_bytes=None):
    """Runs `xnai ARGS` (with `--data DIR` appended after the subcommand's
    arguments when data_dir is given). Returns CompletedProcess with text."""
    cmd = [XNAI_BIN] + list(args)
    if data_dir is not None:
        cmd += ["--data", data_dir]
    return subprocess.run(cmd, capture_output=True, cwd=cwd or tempfile.gettempdir(),
                          env=clean_env(env), timeout=timeout, input=input_bytes)


# --- test case base -----------------------------------------------------------


class XnaiTestCase(unittest.TestCase):
    """Gives each test its own temp folder, starts servers in it, stops them
    at the end (asserting a clean exit 0) and prints their logs on failure."""

    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="xnai-it-")
        self.servers = []
        self.addCleanup(self._cleanup)

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        result = getattr(outcome, "result", None)
        if result is not None:
            for test, _ in list(result.failures) + list(result.errors):
                if test is self:
                    return True
        return not getattr(outcome, "success", True)

    def _cleanup(self):
        problems = []
        for server in self.servers:
            if server.running:
                try:
                    code = server.stop()
                    if code != 0:
                        problems.append("server exited with %s on SIGTERM\n%s"
                                        % (code, server.log_tail()))
                except AssertionError as e:
                    problems.append(str(e))
        if self._failed() or problems:
            for server in self.servers:
                sys.stderr.write("\n%s\n" % server.log_tail(80))
        shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            self.fail("\n".join(problems))

    def path(self, *parts):
        p = os.path.join(self.tmp, *parts)
        return p

    def write(self, relpath, data):
        p = self.path(relpath)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        return p

    def start_server(self, args=(), env=None, data_dir=None, listen="127.0.0.1:0",
                     wait_ready=True):
        data_dir = data_dir or os.path.join(self.tmp, "data-%d" % len(self.servers))
        work = os.path.join(self.tmp, "cwd")
        os.makedirs(work, exist_ok=True)
        server = ServerProcess(data_dir, work, args=args, env=env, listen=listen)
        self.servers.append(server)
        server.start()
        if wait_ready:
            server.wait_ready()
        return server

    def stop_server(self, server, sig=signal.SIGTERM):
        code = server.stop(sig)
        self.assertEqual(code, 0, "server exit code on signal %d\n%s" % (sig, server.log_tail()))
        return code

    # --- assertions ---

    def assertStatus(self, response, status, msg=""):
        if response.status != status:
            logs = "".join("\n" + s.log_tail(15) for s in self.servers)
            self.fail("want HTTP %d, got %r %s%s" % (status, response, msg, logs))

    def assertErrorBody(self, response, status=None, message_contains=None):
        """Asserts the uniform error shape {"error": {"message","type","code"}}
        (all non-empty strings); returns the inner error object."""
        if status is not None:
            self.assertStatus(response, status)
        self.assertGreaterEqual(response.status, 400, repr(response))
        ctype = response.header("content-type") or ""
        self.assertIn("application/json", ctype, "error content type of %r" % response)
        try:
            body = response.json()
        except ValueError:
            self.fail("error body is not JSON: %r" % response)
        self.assertIsInstance(body, dict, repr(response))
        self.assertEqual(set(body.keys()), {"error"}, repr(response))
        err = body["error"]
        self.assertIsInstance(err, dict, repr(response))
        for key in ("message", "type", "code"):
            self.assertIn(key, err, repr(response))
            self.assertIsInstance(err[key], str, repr(response))
            self.assertTrue(err[key], "empty error.%s in %r" % (key, response))
        if message_contains is not None:
            for needle in ([message_contains] if isinstance(message_contains, str)
                           else message_contains):
                self.assertIn(needle.lower(), err["message"].lower(),
                              "error message of %r" % response)
        return err

    def search(self, server, q, expect=200, **params):
        from urllib.parse import urlencode
        query = {"q": q}
        query.update(params)
        r = server.get("/api/search?" + urlencode(query))
        self.assertStatus(r, expect, "for search %r" % (query,))
        return r.json()["hits"] if expect == 200 else r

    def add_text(self, server, text, title="", collection=None, expect=201):
        body = {"text": text}
        if title:
            body["title"] = title
        if collection:
            body["collection"] = collection
        r = server.post_json("/api/documents", body)
        self.assertStatus(r, expect, "adding text titled %r" % title)
        return r.json()

"""Graceful shutdown: SIGTERM/SIGINT stop accepting, let in-flight requests
finish, exit 0 and log server.stopped."""

import os
import signal
import socket
import sqlite3
import threading
import time
import unittest

from harness import XnaiTestCase, unique_word


def wait_for_event(server, name, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.get("event") == name or e.get("msg") == name for e in server.log_events()) \
                or name in server.log():
            return True
        time.sleep(0.05)
    return False


class ShutdownTest(XnaiTestCase):
    def test_sigterm_idle_exits_0_quickly(self):
        server = self.start_server()
        self.assertStatus(server.get("/health"), 200)
        start = time.monotonic()
        self.stop_server(server, signal.SIGTERM)
        self.assertLess(time.monotonic() - start, 5, "idle shutdown took too long")
        self.assertIn("server.stopped", server.log())

    def test_sigint_exits_0(self):
        server = self.start_server()
        self.stop_server(server, signal.SIGINT)
        self.assertIn("server.stopped", server.log())

    def test_idle_keepalive_connection_does_not_block_shutdown(self):
        server = self.start_server()
        conn = server.connection()
        conn.request("GET", "/health")
        conn.getresponse().read()
        try:
            start = time.monotonic()
            self.stop_server(server)
            self.assertLess(time.monotonic() - start, 5)
        finally:
            conn.close()

    def test_in_flight_requests_complete(self):
        """A POST is held in flight by a database lock from another process;
        SIGTERM arrives; new connections are refused; the lock is released; the
        in-flight request completes with 201 and the process exits 0. The busy
        timeout is long so a loaded machine cannot turn the wait into a 503."""
        server = self.start_server(args=("--set", "data.busy_timeout_ms=60000"))
        self.add_text(server, "warm up the schema", title="warm")
        db = sqlite3.connect(os.path.join(server.data_dir, "xnai.db"), timeout=5,
                             isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        word = unique_word()
        results = {}

        def post(i):
            try:
                results[i] = server.post_json("/api/documents",
                                              {"text": "in flight %d %s" % (i, word),
                                               "title": "flight-%d" % i}, timeout=30)
            except Exception as e:  # recorded and asserted below
                results[i] = e

        threads = [threading.Thread(target=post, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.6)  # requests are now blocked on the lock inside the server
        self.assertTrue(all(t.is_alive() for t in threads), results)
        server.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertTrue(server.running, "server exited with requests in flight")
        refused = False
        try:
            s = socket.create_connection((server.host, server.port), timeout=2)
            # Accepted by the kernel backlog perhaps, but never served.
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(1)
            data = s.recv(100)
            refused = not data.startswith(b"HTTP/1.1 200")
            s.close()
        except OSError:
            refused = True
        self.assertTrue(refused, "new connection served during the drain")
        db.execute("ROLLBACK")
        db.close()
        for t in threads:
            t.join(30)
        for i in range(3):
            self.assertNotIsInstance(results[i], Exception, results)
            self.assertStatus(results[i], 201)
        code = server.stop(timeout=20)
        self.assertEqual(code, 0, server.log_tail())
        self.assertIn("server.stopped", server.log())
        # Everything the clients were told was stored is there after a restart.
        again = self.start_server(data_dir=server.data_dir)
        self.assertEqual(len(self.search(again, word)), 3)


if __name__ == "__main__":
    unittest.main()

"""Faults from outside: the database locked by another process (503 after
the store's 5 s busy timeout, then recovery) and a full disk (507, and the
server keeps serving what it has)."""

import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from harness import XnaiTestCase, unique_word


class DatabaseLockedTest(XnaiTestCase):
    def test_locked_database_is_503_then_recovers(self):
        server = self.start_server()
        word = unique_word()
        self.add_text(server, "before the lock %s" % word, title="before")
        db = sqlite3.connect(os.path.join(server.data_dir, "xnai.db"), timeout=5,
                             isolation_level=None)
        try:
            db.execute("BEGIN EXCLUSIVE")
            start = time.monotonic()
            r = server.post_json("/api/documents", {"text": "during the lock", "title": "d"},
                                 timeout=30)
            elapsed = time.monotonic() - start
            err = self.assertErrorBody(r, 503, "locked")
            self.assertGreaterEqual(elapsed, 3.5, "gave up before the busy timeout")
            self.assertLess(elapsed, 15, "hung far past the busy timeout")
            # Liveness and reads keep working while another process writes (WAL).
            self.assertStatus(server.get("/health"), 200)
            self.assertEqual(len(self.search(server, word)), 1)
        finally:
            db.execute("ROLLBACK")
            db.close()
        body = self.add_text(server, "after the lock %s" % word, title="after")
        self.assertEqual(body["documents"][0]["outcome"], "created")
        self.assertEqual(len(self.search(server, word)), 2)
        titles = sorted(d["title"] for d in server.get("/api/documents").json()["documents"])
        self.assertEqual(titles, ["after", "before"], "the failed write left a document behind")


def try_mount_tmpfs(size):
    """Mounts a tmpfs of `size` on a new temp dir; returns (dir, reason)."""
    if os.geteuid() != 0:
        return None, "not running as root"
    mnt = tempfile.mkdtemp(prefix="xnai-fulldisk-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", mnt],
                       capture_output=True)
    if p.returncode != 0:
        os.rmdir(mnt)
        return None, "mount -t tmpfs failed: %s" % p.stderr.decode().strip()
    return mnt, ""


def unmount(mnt):
    subprocess.run(["umount", mnt], capture_output=True)
    try:
        os.rmdir(mnt)
    except OSError:
        pass


class DiskFullTest(XnaiTestCase):
    def test_full_disk_is_507_and_server_keeps_serving(self):
        mnt, reason = try_mount_tmpfs("256k")
        if mnt is None:
            msg = "\n!!! SKIPPING the full-disk test: %s (needs root and tmpfs mounts) !!!\n" % reason
            sys.stderr.write(msg)
            self.skipTest(msg.strip())
        self.addCleanup(unmount, mnt)
        data = os.path.join(mnt, "data")
        server = self.start_server(data_dir=data)
        first = unique_word()
        self.add_text(server, "the first stored document says %s" % first, title="first")
        rng = random.Random(7)
        letters = "abcdefghijklmnopqrstuvwxyz"
        failure = None
        stored = 1
        for i in range(400):
            text = " ".join("".join(rng.choice(letters) for _ in range(rng.randint(4, 12)))
                            for _ in range(800))
            r = server.post_json("/api/documents", {"text": text, "title": "filler-%d" % i})
            if r.status in (200, 201):
                stored += 1
                continue
            failure = r
            break
        self.assertIsNotNone(failure, "256 KiB never filled up after %d documents" % stored)
        err = self.assertErrorBody(failure, 507)
        self.assertIn("disk full", err["message"].lower())
        # Still serving: liveness, readiness, reads of what was stored.
        self.assertStatus(server.get("/health"), 200)
        self.assertStatus(server.get("/ready"), 200)
        hits = self.search(server, first)
        self.assertEqual(len(hits), 1)
        docs = server.get("/api/documents?limit=1000").json()["documents"]
        self.assertEqual(len(docs), stored, "documents lost or half-written after disk full")
        # A second write also fails cleanly (not a crash, not a 500).
        r = server.post_json("/api/documents", {"text": "more " + unique_word() * 50,
                                                "title": "again"})
        self.assertIn(r.status, (201, 507), r)
        if r.status == 507:
            self.assertErrorBody(r, 507, "disk full")
        self.stop_server(server)


if __name__ == "__main__":
    unittest.main()

"""test_ctl_large.py - relayctl answers longer than one IPC frame: a queue
of a few thousand messages (kept queued by a smarthost nobody listens on)
is listed in full by `relayctl queue` and `relayctl queue --json`, which
the queue worker sends as MSG_CTL_PART frames ahead of its MSG_CTL_REP and
the master forwards to relayctl as they come.

The messages go in over raw pipelined SMTP on a few parallel connections
(MAIL, RCPT and DATA in one write, then the body), which is much faster
than one smtplib transaction after another.
"""
import json
import re
import socket
import threading
import time
import unittest

from harness import Relayd, free_port

NMSG = 3000
NCONN = 6
QUEUED = re.compile(rb"^250 2\.0\.0 Ok: queued as (\S+)\r$", re.M)


class SmtpPipe:
    """One raw SMTP connection; replies are read line by line."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.s.makefile("rb")
        self.reply()
        self.s.sendall(b"EHLO bulk.test\r\n")
        self.reply()

    def reply(self):
        """The last line of one (possibly multi-line) reply."""
        while True:
            line = self.f.readline()
            if not line:
                raise AssertionError("connection closed by relayd")
            if line[3:4] != b"-":
                return line

    def send_many(self, n, tag):
        """Sends n messages; returns their queue ids."""
        qids = []
        for i in range(n):
            self.s.sendall(b"MAIL FROM:<s%s-%d@bulk.test>\r\nRCPT TO:<r%d@far.test>\r\n"
                           b"DATA\r\n" % (tag, i, i))
            got = [self.reply() for _ in range(3)]
            if not (got[0].startswith(b"250") and got[1].startswith(b"250")
                    and got[2].startswith(b"354")):
                raise AssertionError("envelope refused: %r" % got)
            self.s.sendall(b"Subject: bulk %d\r\n\r\nmessage %d\r\n.\r\n" % (i, i))
            line = self.reply()
            m = QUEUED.match(line)
            if m is None:
                raise AssertionError("not queued: %r" % line)
            qids.append(m.group(1).decode())
        return qids

    def close(self):
        try:
            self.s.sendall(b"QUIT\r\n")
            self.reply()
        except OSError:
            pass
        self.f.close()
        self.s.close()


def submit_all(port, nmsg, nconn):
    """nmsg messages over nconn parallel connections; all queue ids."""
    results = [None] * nconn
    errors = []

    def run(k):
        try:
            c = SmtpPipe(port)
            try:
                results[k] = c.send_many(nmsg // nconn + (k < nmsg % nconn), b"%d" % k)
            finally:
                c.close()
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(nconn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        raise errors[0]
    if any(t.is_alive() for t in threads):
        raise AssertionError("submission did not finish in 120 s")
    return [q for r in results for q in r]


class CtlLargeTest(unittest.TestCase):
    def test_queue_listing_longer_than_a_frame(self):
        # Nothing listens on the smarthost port: every message stays queued.
        dead = free_port()
        with Relayd(roles="intake,queue", conf_extra="smarthost [127.0.0.1]:%d\n" % dead) as r:
            qids = submit_all(r.port, NMSG, NCONN)
            self.assertEqual(len(qids), NMSG)
            self.assertEqual(len(set(qids)), NMSG)

            t0 = time.monotonic()
            p = r.ctl("queue", "--json", timeout=60)
            took = time.monotonic() - t0
            print("\nrelayctl queue --json, %d messages: %.3f s, %d bytes"
                  % (NMSG, took, len(p.stdout)))
            self.assertEqual(p.returncode, 0, p.stderr)
            # Longer than one frame, so the answer really came in parts.
            self.assertGreater(len(p.stdout), 256 * 1024)
            data = json.loads(p.stdout)
            self.assertIsInstance(data, list)
            self.assertEqual(sorted(m["qid"] for m in data), sorted(qids))
            self.assertTrue(all(len(m["recipients"]) == 1 for m in data))

            t0 = time.monotonic()
            p = r.ctl("queue", timeout=60)
            took = time.monotonic() - t0
            print("relayctl queue, %d messages: %.3f s, %d bytes"
                  % (NMSG, took, len(p.stdout)))
            self.assertEqual(p.returncode, 0, p.stderr)
            listed = re.findall(r"^(\S+) +\d+ \d{4}-", p.stdout, re.M)
            self.assertEqual(sorted(listed), sorted(qids))
            self.assertTrue(p.stdout.endswith("-- %d message(s)\n" % NMSG), p.stdout[-200:])

            # A short answer after a long one is still one plain reply.
            p = r.ctl("show", qids[0])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("queue id: %s\n" % qids[0], p.stdout)
            self.assertNotIn("did not fit", r.log())


if __name__ == "__main__":
    unittest.main()

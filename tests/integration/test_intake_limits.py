"""test_intake_limits.py - intake's limits (issue 4, point 10) and the
queue hand-off failures (point 6): max-recipients 452 4.5.3,
max-connections and max-connections-per-ip 421 4.7.0 at connect,
smtp-timeout 421 4.4.2 then close, too many errors 421, and 451 4.3.0 with
nothing stored when the queue worker is missing (at once: intake takes mail
only after the queue worker's HELLO_OK) or dies mid-message.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_intake_limits
"""
import os
import signal
import time
import unittest

from harness import Relayd, proc_kb, wait_until
from intake_util import (Client, ReplyAsserts, accepted_lines,
                         dead_smarthost_conf, msg, queue_count, relayd, token)


class IntakeLimits(ReplyAsserts, unittest.TestCase):
    def greeted(self, r, **kw):
        c = Client(r.port, **kw)
        self.addCleanup(c.close)
        self.assertReply(c.greeting(), 220)
        return c

    def test_max_recipients(self):
        t = token("maxrcpt")
        with relayd("max-recipients 3\n") as r:
            c = self.greeted(r)
            c.ehlo()
            self.assertReply(c.cmd("MAIL FROM:<%s@client.example>" % t), 250, "2.1.0")
            for i in range(3):
                self.assertReply(c.cmd("RCPT TO:<r%d@remote.example>" % i), 250, "2.1.5")
            self.assertReply(c.cmd("RCPT TO:<r3@remote.example>"), 452, "4.5.3")
            self.assertReply(c.cmd("RCPT TO:<r4@remote.example>"), 452, "4.5.3")
            self.assertReply(c.cmd("DATA"), 354)
            c.send(msg(t))
            qid = self.assertQueued(c.reply())
            r.wait_log(r"%s: from=<%s@client.example>, size=\d+, nrcpt=3," % (qid, t))
            # the limit is per message: the next one gets three again
            self.assertReply(c.cmd("MAIL FROM:<%s@client.example>" % t), 250, "2.1.0")
            for i in range(3):
                self.assertReply(c.cmd("RCPT TO:<s%d@remote.example>" % i), 250, "2.1.5")

    def test_max_connections(self):
        with relayd("max-connections 3\n") as r:
            held = [self.greeted(r) for _ in range(3)]
            c = Client(r.port)
            self.addCleanup(c.close)
            self.assertReply(c.greeting(), 421, "4.7.0")
            self.assertTrue(c.wait_closed(5), "connection open after 421 at connect")
            # a slot comes free when a client leaves
            self.assertReply(held[0].cmd("QUIT"), 221, "2.0.0")
            self.assertTrue(held[0].wait_closed(5), "connection open after QUIT")
            held[0].close()
            r.wait_log(r"intake: disconnect from \[127\.0\.0\.1\]: closed")

            def greeted():
                c = Client(r.port)
                self.addCleanup(c.close)
                g = c.greeting()
                if g.code != 220:
                    self.assertReply(g, 421, "4.7.0")
                return g.code == 220 and g
            self.assertReply(wait_until(greeted, 10, "a free connection slot"), 220)

    def test_max_connections_per_ip(self):
        with relayd("max-connections-per-ip 2\n") as r:
            for _ in range(2):
                self.greeted(r)
            c = Client(r.port)
            self.addCleanup(c.close)
            self.assertReply(c.greeting(), 421, "4.7.0")
            self.assertTrue(c.wait_closed(5))
            # another address is not affected
            self.greeted(r, source="127.0.0.2")

    def test_smtp_timeout(self):
        with relayd("smtp-timeout 2s\n") as r:
            c = self.greeted(r)
            c.ehlo()
            start = time.monotonic()
            replies, closed = c.replies_until_close(idle=10)
            took = time.monotonic() - start
            self.assertEqual(len(replies), 1, replies)
            self.assertReply(replies[0], 421, "4.4.2")
            self.assertTrue(closed or c.wait_closed(3), "connection open after the timeout 421")
            self.assertGreater(took, 1.5)
            self.assertLess(took, 10, "a generous bound for a 2 s timeout")

    def test_smtp_timeout_activity_resets(self):
        with relayd("smtp-timeout 2s\n") as r:
            c = self.greeted(r)
            for _ in range(4):
                time.sleep(1)  # activity every second, inside the 2 s timeout
                self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_timeout_in_data_stores_nothing(self):
        t = token("tdata")
        with relayd("smtp-timeout 2s\n") as r:
            c = self.greeted(r)
            c.ehlo()
            self.start_data(c, "%s@client.example" % t, "a@remote.example")
            c.send(b"Subject: " + t.encode() + b"\r\n\r\nhalf a message\r\n")
            replies, closed = c.replies_until_close(idle=10)
            self.assertTrue(closed or c.wait_closed(3), "connection open after the timeout")
            self.assertEqual(len(replies), 1, replies)
            self.assertReply(replies[0], 421, "4.4.2")
            self.assertEqual(queue_count(r, t), 0)
            self.assertEqual(accepted_lines(r, t), [])
            r.wait_nothing_stored(t)

    def test_too_many_errors(self):
        with relayd() as r:
            c = self.greeted(r)
            c.ehlo()
            # the 20th error's 500 is followed by the 421, then the close
            for i in range(19):
                self.assertReply(c.cmd("BOGUS%d" % i), 500, "5.5.1", "error %d" % (i + 1))
            c.send("BOGUS19\r\n")
            replies, closed = c.replies_until_close(idle=5)
            self.assertEqual([(x.code, x.enhanced) for x in replies],
                             [(500, "5.5.1"), (421, "4.7.0")], replies)
            self.assertTrue(closed or c.wait_closed(5), "connection open after 421")


class IntakeScale(ReplyAsserts, unittest.TestCase):
    def test_memory_bounded_for_a_big_message(self):
        """The content streams to the queue: a 40 MB message does not
        grow intake by anything like its size."""
        t = token("huge")
        with relayd("max-message-size 100M\n") as r:
            pid = r.pids()["intake"]
            with Client(r.port, timeout=60) as c:
                c.greeting()
                c.ehlo()
                before = proc_kb(pid, "VmHWM")
                self.start_data(c, "%s@client.example" % t, "a@remote.example")
                c.send(b"Subject: " + t.encode() + b"\r\n\r\n")
                chunk = (b"z" * 98 + b"\r\n") * 10000  # 1 MB
                for _ in range(40):
                    c.send(chunk)
                c.send(b".\r\n")
                self.assertQueued(c.reply())
                grew = proc_kb(pid, "VmHWM") - before
            self.assertLess(grew, 16 * 1024, "intake's peak RSS grew by %d kB" % grew)
            self.assertGreater(accepted_lines(r, t)[0][2], 40 * 1000 * 1000)

    def test_many_idle_connections(self):
        n = 500
        with relayd("max-connections-per-ip %d\nmax-connections %d\n" % (2 * n, 2 * n)) as r:
            pid = r.pids()["intake"]
            before = proc_kb(pid)
            conns = []
            try:
                for _ in range(n):
                    conns.append(Client(r.port))
                for c in conns:
                    self.assertReply(c.greeting(), 220)
                grew = proc_kb(pid) - before
                # a fresh client is still served at once
                t = token("busy")
                with Client(r.port) as c:
                    c.greeting()
                    self.assertQueued(c.transaction("%s@client.example" % t,
                                                    ["a@remote.example"], msg(t))[-1])
            finally:
                for c in conns:
                    c.close()
            self.assertLess(grew, 50 * 1024, "%d idle connections cost %d kB" % (n, grew))


class IntakeQueueDown(ReplyAsserts, unittest.TestCase):
    def transaction_fails_451(self, c, t):
        """MAIL..end of data: some step gets 451 4.3.0, none 250 queued.
        Returns the seconds from MAIL to the 451."""
        start = time.monotonic()
        steps = [("MAIL FROM:<%s@client.example>" % t, 250),
                 ("RCPT TO:<a@remote.example>", 250), ("DATA", 354)]
        for line, ok in steps:
            x = c.cmd(line)
            if x.code != ok:
                self.assertReply(x, 451, "4.3.0", line)
                return time.monotonic() - start
        c.send(msg(t))
        x = c.reply()
        self.assertReply(x, 451, "4.3.0", "end of data")
        return time.monotonic() - start

    def test_without_queue_worker_451(self):
        """queue.sock accepts connections without a queue worker (the
        master listens); intake knows from the missing HELLO_OK, so MAIL
        gets 451 at once (the first client may wait for its greeting while
        intake gives the queue 2 s at start), and intake keeps its one
        connection waiting instead of piling up new ones."""
        t = token("noqueue")
        with Relayd(conf_extra=dead_smarthost_conf(), roles="intake") as r:
            for when in ("for the first client", "for a later one"):
                with Client(r.port) as c:
                    self.assertReply(c.greeting(), 220)
                    c.ehlo()
                    took = self.transaction_fails_451(c, t)
                    # "at once": without the HELLO_OK intake does not wait for
                    # the queue; waiting would take at least INTAKE_HELLO_MS (2 s)
                    self.assertLess(took, 2.0, "451 after %.2f s %s" % (took, when))
                r.wait_log(r"intake: no queue worker answers on queue\.sock", timeout=5)
            # an absence over a window longer than intake's 1 s reconnect timer
            time.sleep(1.5)
            self.assertEqual(r.log().count("intake: connected to queue.sock"), 1, r.log())
            self.assertEqual(accepted_lines(r, t), [])
            self.assertNotRegex(r.log(), r"queued as")

    def test_queue_dies_mid_message_451(self):
        t = token("qdies")
        with relayd(expect_log=[r"master: queue worker killed by signal 9; restarting"]) as r:
            with Client(r.port) as c:
                c.greeting()
                c.ehlo()
                self.start_data(c, "%s@client.example" % t, "a@remote.example")
                c.send(b"Subject: " + t.encode() + b"\r\n\r\n" + b"line\r\n" * 1000)
                pid = r.pids().get("queue")
                self.assertIsNotNone(pid, "no queue worker: %r" % r.pids())
                os.kill(pid, signal.SIGKILL)  # our own relayd's worker
                r.wait_log(r"intake: lost the queue worker")
                c.send(b"last line\r\n.\r\n")
                self.assertReply(c.reply(), 451, "4.3.0")
            # the master restarts the queue and intake connects to it again
            wait_until(lambda: r.log().count("intake: connected to the queue worker") == 2, 15,
                       "intake connected to the restarted queue worker")
            # the half message is not there
            self.assertEqual(queue_count(r, t), 0)
            self.assertEqual(accepted_lines(r, t), [])
            r.wait_nothing_stored(t)
            # and intake works again
            with Client(r.port) as c:
                self.assertReply(c.greeting(), 220)
                rs = c.transaction("%s-after@client.example" % t, ["a@remote.example"],
                                   msg(t + "-after"))
            self.assertQueued(rs[-1], "a message after the queue restarted")


if __name__ == "__main__":
    unittest.main()

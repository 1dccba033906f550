"""test_intake_slowloris.py - slow clients (issue 9, point 5): a command
line must be complete within smtp-timeout of its first byte; message
content earns time only at a minimum rate (a trickled DATA line runs out, a
slow real upload does not); and with 1,000 slowloris connections from 20
addresses filling max-connections, a client from a fresh address is
greeted within 15 s (it takes the place of the session nearest its
deadline), and stress mode (above 80%) cuts timeouts to 10 s, so that the
slowloris connections are dropped, saying so once when it starts and once
when it ends.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_intake_slowloris
"""
import resource
import socket
import time
import unittest

from intake_util import Client, ReplyAsserts, accepted_lines, msg, queue_count, relayd, token

TIMEOUT_S = 3


def trickle_until_closed(c, data, every, give_up):
    """Sends data one byte every `every` seconds until the server closes
    or give_up; returns (monotonic time of the first byte, of the close or
    None, bytes sent)."""
    first, closed, n = None, None, 0
    c.sock.settimeout(every)
    for i in range(len(data)):
        if time.monotonic() > give_up:
            break
        try:
            c.sock.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            closed = time.monotonic()
            break
        n += 1
        if first is None:
            first = time.monotonic()
        # Reading is how we see the close (and the 421 before it).
        try:
            chunk = c.sock.recv(4096)
        except (socket.timeout, TimeoutError):
            continue
        except ConnectionResetError:
            closed = time.monotonic()
            break
        c.buf += chunk
        if not chunk:
            closed = time.monotonic()
            break
    return first, closed, n


class SlowLines(ReplyAsserts, unittest.TestCase):
    def test_command_trickled_byte_per_second(self):
        """One byte a second used to reset the idle timer each time: now the
        line has smtp-timeout from its first byte."""
        with relayd("smtp-timeout %ds\n" % TIMEOUT_S) as r:
            with Client(r.port) as c:
                self.assertReply(c.greeting(), 220)
                self.assertReply(c.ehlo(), 250)
                first, closed, n = trickle_until_closed(
                    c, b"NOOP " + b"x" * 200 + b"\r\n", 1.0, time.monotonic() + TIMEOUT_S + 10)
                self.assertIsNotNone(closed, "still open after %d bytes at one a second" % n)
                took = closed - first
                self.assertGreater(took, TIMEOUT_S - 0.5, took)
                self.assertLess(took, TIMEOUT_S + 2.5, took)
                self.assertTrue(c.buf.startswith(b"421 4.4.2 "), c.buf)
            r.wait_log(r"intake: timeout from \[127\.0\.0\.1\]")

    def test_whole_lines_slowly_are_fine(self):
        """Complete commands, each within the timeout, keep a session."""
        with relayd("smtp-timeout %ds\n" % TIMEOUT_S) as r:
            with Client(r.port) as c:
                self.assertReply(c.greeting(), 220)
                for _ in range(3):
                    time.sleep(TIMEOUT_S - 1.5)
                    c.send(b"NO")
                    time.sleep(1.0)
                    self.assertReply(c.cmd("OP"), 250, "2.0.0")

    def test_data_line_trickled(self):
        """Content earns time at 500 octets a second: a byte a second does
        not keep DATA open, and nothing is stored."""
        t = token("trickle")
        with relayd("smtp-timeout %ds\n" % TIMEOUT_S) as r:
            with Client(r.port) as c:
                self.assertReply(c.greeting(), 220)
                self.assertReply(c.ehlo(), 250)
                self.start_data(c, "%s@client.example" % t, "a@remote.example")
                start = time.monotonic()
                _, closed, n = trickle_until_closed(c, msg(t), 1.0, start + TIMEOUT_S + 10)
                self.assertIsNotNone(closed, "DATA still open after %d bytes at one a second" % n)
                took = closed - start
                self.assertGreater(took, TIMEOUT_S - 0.5, took)
                self.assertLess(took, TIMEOUT_S + 2.5, took)
            self.assertEqual(queue_count(r, t), 0)
            self.assertEqual(accepted_lines(r, t), [])

    def test_slow_upload_is_not_cut(self):
        """2,000 octets a second for twice smtp-timeout: a slow real client
        keeps earning time and its message is queued."""
        t = token("slowup")
        with relayd("smtp-timeout %ds\n" % TIMEOUT_S) as r:
            with Client(r.port) as c:
                self.assertReply(c.greeting(), 220)
                self.assertReply(c.ehlo(), 250)
                self.start_data(c, "%s@client.example" % t, "a@remote.example")
                c.send(b"Subject: " + t.encode() + b"\r\n\r\n")
                end = time.monotonic() + 2 * TIMEOUT_S
                while time.monotonic() < end:
                    c.send((b"y" * 98 + b"\r\n") * 10)
                    time.sleep(0.5)
                c.send(b".\r\n")
                self.assertQueued(c.reply())


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return soft, hard


class Slowloris(ReplyAsserts, unittest.TestCase):
    N = 1000
    ADDRS = ["127.0.0.%d" % i for i in range(2, 22)]  # 20 addresses, 50 each

    def setUp(self):
        # Both this process and relayd (which inherits it) hold 1,000 sockets.
        old = raise_nofile(4 * self.N)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, old)

    def test_fresh_client_greeted_under_slowloris(self):
        with relayd("max-connections %d\n" % self.N) as r:
            socks = []
            try:
                per = self.N // len(self.ADDRS)
                for a in self.ADDRS:
                    for _ in range(per):
                        s = socket.create_connection(("127.0.0.1", r.port), timeout=10,
                                                     source_address=(a, 0))
                        s.setblocking(False)
                        socks.append(s)
                r.wait_log(r"intake: stress: \d+ of %d connections in use; "
                           r"timeouts cut to 10 s" % self.N, timeout=30)
                # Each attacker starts a command and sends a byte every 2 s.
                start = time.monotonic()
                greeted = None
                tried = 0
                next_drip = 0
                while time.monotonic() < start + 20 and greeted is None:
                    if time.monotonic() >= next_drip:
                        for s in socks:
                            try:
                                s.send(b"E")
                            except OSError:
                                pass
                        next_drip = time.monotonic() + 2
                    tried += 1
                    try:
                        with Client(r.port, timeout=2) as c:
                            g = c.greeting()
                            if g.code == 220:
                                greeted = time.monotonic() - start
                    except (OSError, AssertionError):
                        pass
                    time.sleep(0.25)
                self.assertIsNotNone(greeted, "no greeting for a fresh client in 20 s "
                                     "(%d tries)" % tried)
                self.assertLess(greeted, 15.0)
                # Stress timeouts: every attacker is gone 10 s after its first
                # byte (5 minutes without stress).
                deadline = start + 25
                def open_ones():
                    n = 0
                    for s in socks:
                        try:
                            while True:
                                if not s.recv(4096):
                                    break
                        except BlockingIOError:
                            n += 1
                        except OSError:
                            pass
                    return n
                left = open_ones()
                while left > 0 and time.monotonic() < deadline:
                    time.sleep(0.5)
                    left = open_ones()
                self.assertEqual(left, 0, "%d slowloris connections open %.0f s after they began"
                                 % (left, time.monotonic() - start))
                log = r.log()
                self.assertEqual(log.count("intake: stress: "), 1, log[-3000:])
            finally:
                for s in socks:
                    s.close()
            r.wait_log(r"intake: stress over: \d+ of %d connections in use; "
                       r"timeouts back to 300 s" % self.N, timeout=30)
            self.assertEqual(r.log().count("intake: stress over: "), 1)


if __name__ == "__main__":
    unittest.main()

"""test_intake_throttle.py - AUTH guessing (issue 9, point 6): failed AUTH
counted per client address across sessions, `auth-fail-limit N [WINDOW]`
then 454 4.7.0 (even for the right password) until the window ends, logged
once; other addresses unaffected; an unknown user takes as long as a known
one with a wrong password; password hashing does not stall other sessions;
clients that hang up while their password is being checked do no harm.

Each class has its own relayd; each test its own loopback source address
(127.0.0.0/8 is all local), so that their failures do not add up.

Run: cd tests/integration && BIN=bin /usr/bin/python3 -m unittest -v test_intake_throttle
"""
import ctypes
import socket
import statistics
import struct
import time
import unittest

from harness import wait_until
from intake_util import Client, ReplyAsserts, SharedRelayd, auth_users_file, b64, plain_ir, tls_conf

ALICE, ALICE_PW = "alice", "alice-secret"
THROTTLED = "4.7.0"


def crypt_sha512(password, rounds, salt="relaydtestsalt"):
    """A sha512crypt hash with the given rounds (libcrypt through ctypes:
    Python's crypt module is deprecated, openssl passwd has no rounds)."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    h = lib.crypt(password.encode(), ("$6$rounds=%d$%s$" % (rounds, salt)).encode())
    assert h and not h.startswith(b"*"), h
    return h.decode()


def users_file_with(hashes):
    """An auth-users file from {user: hash}."""
    path = auth_users_file({"placeholder": "x"})
    with open(path, "w") as f:
        for u, h in hashes.items():
            f.write("%s:%s\n" % (u, h))
    return path


class AuthSession(ReplyAsserts):
    """A session in TLS, after EHLO, from a chosen source address."""

    def tls_session(self, source, timeout=30):
        c = Client(self.r.port, source=source, timeout=timeout)
        self.addCleanup(c.close)
        self.assertReply(c.greeting(), 220)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.starttls(), 220, "2.0.0")
        self.assertReply(c.ehlo(), 250)
        return c


class Throttle(SharedRelayd, AuthSession, unittest.TestCase):
    """auth-fail-limit 3 (window 10 minutes)."""

    @classmethod
    def relayd_conf(cls):
        return (tls_conf() + "auth-users %s\nmynetworks 10.0.0.0/8\nauth-fail-limit 3\n"
                % auth_users_file())

    def test_limit_across_sessions_then_454(self):
        src = "127.0.0.21"
        start = len(self.r.log())
        c = self.tls_session(src)
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, "guess1")), 535, "5.7.8")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir("nosuchuser", "guess2")), 535, "5.7.8")
        # A new session: the count goes on per address, not per session.
        c = self.tls_session(src)
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, "guess3")), 535, "5.7.8")
        self.r.wait_log(r"\[%s\]: 3 failed AUTH within 600 s" % src.replace(".", r"\."),
                        start=start)
        # Now refused before any credentials, also the right ones, in every session.
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW)), 454, THROTTLED)
        self.assertReply(c.cmd("AUTH LOGIN"), 454, THROTTLED)
        c2 = self.tls_session(src)
        r = c2.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW))
        self.assertReply(r, 454, THROTTLED)
        self.assertIn("too many authentication failures", r.text)
        # The session itself goes on: a 454 is not a reason to hang up.
        self.assertReply(c2.cmd("NOOP"), 250, "2.0.0")
        # Another address is not concerned.
        c3 = self.tls_session("127.0.0.22")
        self.assertReply(c3.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW)), 235, "2.7.0")
        # Logged once when the limit was reached, not at every refusal.
        log = self.r.log()[start:]
        self.assertEqual(log.count("[%s]: 3 failed AUTH" % src), 1, log[-3000:])

    def test_login_exchange_refused_when_limit_reached_meanwhile(self):
        """A LOGIN exchange started before the limit was reached elsewhere
        is refused at its password, without a check."""
        src = "127.0.0.23"
        slow = self.tls_session(src)
        self.assertReply(slow.cmd("AUTH LOGIN"), 334)
        self.assertReply(slow.cmd(b64(ALICE)), 334)
        other = self.tls_session(src)
        for i in range(2):
            self.assertReply(other.cmd("AUTH PLAIN " + plain_ir(ALICE, "bad%d" % i)), 535, "5.7.8")
        other = self.tls_session(src)
        self.assertReply(other.cmd("AUTH PLAIN " + plain_ir(ALICE, "bad2")), 535, "5.7.8")
        self.assertReply(slow.cmd(b64(ALICE_PW)), 454, THROTTLED)


class Window(SharedRelayd, AuthSession, unittest.TestCase):
    """auth-fail-limit 2 2s: the refusal ends with the window."""

    @classmethod
    def relayd_conf(cls):
        return (tls_conf() + "auth-users %s\nmynetworks 10.0.0.0/8\nauth-fail-limit 2 2s\n"
                % auth_users_file())

    def test_window_passes(self):
        src = "127.0.0.31"
        c = self.tls_session(src)
        t0 = time.monotonic()
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, "bad1")), 535, "5.7.8")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, "bad2")), 535, "5.7.8")
        r = c.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW))
        if time.monotonic() - t0 < 1.5:  # still inside the 2 s window
            self.assertReply(r, 454, THROTTLED)
        # Once the window has ended, the right password works again.
        def window_over():
            r = self.tls_session(src).cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW))
            if r.code == 235:
                self.assertReply(r, 235, "2.7.0")
                return True
            self.assertReply(r, 454, THROTTLED)
            return False
        wait_until(window_over, 10, "AUTH to work again after the window", step=0.2)
        self.assertGreaterEqual(time.monotonic() - t0, 1.9)


# Slow hashes make the cost of a check visible next to the network's noise.
SLOW_ROUNDS = 800000


class SlowHash(SharedRelayd, AuthSession, unittest.TestCase):
    """alice's hash costs SLOW_ROUNDS rounds; the throttle is out of the way."""

    @classmethod
    def relayd_conf(cls):
        t0 = time.monotonic()
        h = crypt_sha512(ALICE_PW, SLOW_ROUNDS)
        cls.hash_s = time.monotonic() - t0  # what one hash costs here
        return (tls_conf() + "auth-users %s\nmynetworks 10.0.0.0/8\n"
                "auth-fail-limit 100000\nmax-connections-per-ip 200\n"
                % users_file_with({ALICE: h}))

    def auth_time(self, c, user, password):
        t0 = time.monotonic()
        r = c.cmd("AUTH PLAIN " + plain_ir(user, password))
        self.assertReply(r, 535, "5.7.8")
        return time.monotonic() - t0

    def test_unknown_user_takes_as_long(self):
        known, unknown = [], []
        for i in range(3):
            c = self.tls_session("127.0.0.41")
            known.append(self.auth_time(c, ALICE, "wrong%d" % i))
            unknown.append(self.auth_time(c, "nobody%d" % i, "wrong%d" % i))
        k, u = statistics.median(known), statistics.median(unknown)
        # The check is real work (a hash of SLOW_ROUNDS rounds)...
        self.assertGreater(k, self.hash_s * 0.3, (known, self.hash_s))
        # ...and an unknown user gets the same work (a dummy of the same kind).
        self.assertGreater(u, k * 0.5, "unknown %r vs known %r" % (unknown, known))
        self.assertLess(u, k * 2.0, "unknown %r vs known %r" % (unknown, known))

    def test_hashing_does_not_stall_ehlo(self):
        """While four slow checks run one after another, another client's
        EHLOs are answered at once: the loop is not the one hashing."""
        guessers = [self.tls_session("127.0.0.42") for _ in range(4)]
        normal = Client(self.r.port, source="127.0.0.43")
        self.addCleanup(normal.close)
        self.assertReply(normal.greeting(), 220)
        self.assertReply(normal.ehlo(), 250)
        for g in guessers:
            g.send("AUTH PLAIN " + plain_ir(ALICE, "wrong") + "\r\n")
        t0 = time.monotonic()
        lat = []
        # Until every guess was answered (they take about 4 hashes in all).
        pending = list(guessers)
        deadline = t0 + 60
        while pending and time.monotonic() < deadline:
            s = time.monotonic()
            self.assertReply(normal.ehlo(), 250)
            lat.append(time.monotonic() - s)
            for g in list(pending):
                g.sock.settimeout(0.001)
                try:
                    r = g.reply()
                except (socket.timeout, TimeoutError):
                    continue
                finally:
                    g.sock.settimeout(g.timeout)
                self.assertReply(r, 535, "5.7.8")
                pending.remove(g)
            time.sleep(0.005)
        elapsed = time.monotonic() - t0
        self.assertEqual(pending, [], "guesses not answered in 60 s")
        self.assertGreater(elapsed, self.hash_s * 1.5, "the checks were not slow: %.3f" % elapsed)
        self.assertGreater(len(lat), 10)
        # On the loop, an EHLO behind a check would wait for the whole hash.
        # (One slow answer is allowed: a busy machine may deschedule intake.)
        self.assertLess(statistics.median(lat), 0.05, lat)
        slow = [x for x in lat if x > self.hash_s * 0.5]
        self.assertLessEqual(len(slow), 1, "EHLOs slower than half a hash (%.3f s): %r of %d"
                             % (self.hash_s, slow, len(lat)))

    def test_hang_up_during_check(self):
        """Clients that send a password and reset the connection at once:
        their checks finish for nobody; relayd goes on serving."""
        pid = self.r.pids()["intake"]
        for i in range(20):
            c = self.tls_session("127.0.0.44")
            c.send("AUTH PLAIN " + plain_ir(ALICE if i % 2 else "nobody", "x%d" % i) + "\r\n")
            if i % 3 == 0:
                c.send("NOOP\r\nEHLO again\r\n")  # pipelined behind the check
            if i % 2 == 0:  # a reset rather than a FIN
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        # The right password still works, after the checks queued before it.
        c = self.tls_session("127.0.0.45", timeout=60)
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW)), 235, "2.7.0")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.assertEqual(self.r.pids().get("intake"), pid, "intake restarted:\n" + self.r.log()[-3000:])
        self.assertNotIn("fatal", self.r.log())


if __name__ == "__main__":
    unittest.main()

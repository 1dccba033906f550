"""test_proxy.py - `listen ADDR:PORT smtp proxy` (issue 13, point 3): the
PROXY protocol header, v1 and v2, before SMTP.

- Through a real HAProxy (send-proxy and send-proxy-v2) a client bound to
  127.0.0.5 is `client=[127.0.0.5]` in the log and in Received:, and
  mynetworks (127.0.0.5/32, which HAProxy's own 127.0.0.1 is not in) lets
  it relay while a client from 127.0.0.6 is refused; HAProxy's SMTP health
  check, sent with a v2 LOCAL header, gets its greeting.
- Raw headers: one split across reads with SMTP right behind it (nothing
  read past the header), v2 LOCAL (the connection's own address), v2 with
  an IPv6 client, malformed / oversized ones closed at once without a
  greeting and logged with their reason, a truncated one closed at the
  5 s header timeout, and max-connections-per-ip and auth-fail-limit
  counted on the header's address.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_proxy
"""
import re
import smtplib
import time
import unittest

from haproxy_util import HAProxy
from harness import Relayd, wait_until
from intake_util import (Client, ReplyAsserts, Upstream, accepted_lines, auth_users_file,
                         headers_of, msg, plain_ir, relayd, tls_conf, token)

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
PROXY = "smtp proxy"


def v2(cmd, fam, addrs=b"", tlvs=b""):
    body = addrs + tlvs
    return SIG + bytes([0x20 | cmd, fam]) + len(body).to_bytes(2, "big") + body


def v2_tcp4(src, sport=40000, dst="127.0.0.1", dport=25, tlvs=b""):
    a = bytes(int(x) for x in src.split(".")) + bytes(int(x) for x in dst.split("."))
    return v2(1, 0x11, a + sport.to_bytes(2, "big") + dport.to_bytes(2, "big"), tlvs)


class ThroughHAProxy(ReplyAsserts, unittest.TestCase):
    """relayd behind a real HAProxy; mynetworks is 127.0.0.5 alone."""

    @classmethod
    def setUpClass(cls):
        cls.up = Upstream().__enter__()
        try:
            cls.r = Relayd(listens=[(PROXY, None)],
                           conf_extra=cls.up.conf() + "mynetworks 127.0.0.5/32\n")
        except BaseException:
            cls.up.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.r.cleanup()
        finally:
            cls.up.stop()

    def relay_through(self, send):
        t = token(send.replace("-", ""))
        with HAProxy(self.r.dir, [self.r.port], send=send) as hp:
            with smtplib.SMTP("127.0.0.1", hp.port, timeout=20,
                              source_address=("127.0.0.5", 0)) as s:
                s.ehlo("client.test")
                self.assertEqual(s.sendmail("%s@lan.test" % t, ["a@far.test"],
                                            msg(t).decode()), {})
        got = self.up.wait_for(t)
        wait_until(lambda: accepted_lines(self.r, t), 10, "the accepted line of %s" % t)
        self.assertEqual(accepted_lines(self.r, t)[0][4], "127.0.0.5")
        received = [v for n, v in headers_of(got[0].data) if n.lower() == "received"]
        self.assertRegex(received[0], r"^from client\.test \(\[127\.0\.0\.5\]\) by relayd\.test ")

    def test_send_proxy_v1_gives_the_client_address(self):
        self.relay_through("send-proxy")

    def test_send_proxy_v2_gives_the_client_address(self):
        self.relay_through("send-proxy-v2")

    def test_client_outside_mynetworks_is_refused_relaying(self):
        with HAProxy(self.r.dir, [self.r.port], send="send-proxy-v2") as hp:
            with smtplib.SMTP("127.0.0.1", hp.port, timeout=20,
                              source_address=("127.0.0.6", 0)) as s:
                s.ehlo("client.test")
                self.assertEqual(s.mail("s@lan.test")[0], 250)
                code, text = s.rcpt("a@far.test")
                self.assertEqual((code, text[:5]), (554, b"5.7.1"))
        self.r.wait_log(r"reject: RCPT from unknown\[127\.0\.0\.6\]: 554 5\.7\.1 "
                        r".*to=<a@far\.test>")

    def test_health_check_with_local_header_gets_a_greeting(self):
        start = len(self.r.log())
        with HAProxy(self.r.dir, [self.r.port], send="send-proxy-v2", check=True):
            # Two checks: HAProxy's smtpchk needs a 2xx greeting and EHLO reply.
            wait_until(lambda: len(re.findall(r"PROXY v2 header from \[127\.0\.0\.1\]: no client ",
                                              self.r.log()[start:])) >= 2,
                       15, "two LOCAL health checks")
        self.assertNotRegex(self.r.log()[start:], r"bad PROXY header")
        self.assertRegex(self.r.log()[start:], r"connect from \[127\.0\.0\.1\]")


class RawHeaders(ReplyAsserts, unittest.TestCase):
    """Headers written by hand, straight to the proxy listener."""

    @classmethod
    def setUpClass(cls):
        cls.r = relayd(listens=[(PROXY, None)], conf_extra="mynetworks 127.0.0.0/8 2001:db8::/32\n"
                       "max-connections-per-ip 2\n")

    @classmethod
    def tearDownClass(cls):
        cls.r.cleanup()

    def send_mail(self, c, t):
        rs = c.transaction("%s@lan.test" % t, ["a@far.test"], msg(t), helo=False)
        self.assertQueued(rs[-1])

    def test_v1_split_across_reads_with_smtp_behind_it(self):
        t = token("v1split")
        with Client(self.r.port) as c:
            c.send(b"PROX")
            self.assertEqual(c.pending(0.3), b"")
            c.send(b"Y TCP4 127.0.0.9 ")
            self.assertEqual(c.pending(0.3), b"", "greeting before the header is whole")
            # The rest of the header and the client's first command at once:
            # the command must reach the SMTP dialogue untouched.
            c.send(b"127.0.0.1 40000 25\r\nEHLO client.test\r\n")
            self.assertReply(c.greeting(), 220, None)
            self.assertReply(c.reply(), 250, None)
            self.send_mail(c, t)
        wait_until(lambda: accepted_lines(self.r, t), 10, "accepted line")
        self.assertEqual(accepted_lines(self.r, t)[0][4], "127.0.0.9")

    def test_v2_ipv6_client_with_tlvs(self):
        t = token("v2six")
        src = bytes.fromhex("20010db8000000000000000000000007")
        addrs = src + bytes(15) + b"\x01" + (54321).to_bytes(2, "big") + (25).to_bytes(2, "big")
        with Client(self.r.port) as c:
            c.send(v2(1, 0x21, addrs, tlvs=b"\x01\x00\x04smtp"))
            self.assertReply(c.greeting(), 220, None)
            c.ehlo()
            self.send_mail(c, t)
        wait_until(lambda: accepted_lines(self.r, t), 10, "accepted line")
        self.assertEqual(accepted_lines(self.r, t)[0][4], "2001:db8::7")

    def test_v2_local_uses_the_connection_address(self):
        t = token("v2local")
        with Client(self.r.port, source="127.0.0.3") as c:
            c.send(v2(0, 0x00))
            self.assertReply(c.greeting(), 220, None)
            c.ehlo()
            self.send_mail(c, t)
        wait_until(lambda: accepted_lines(self.r, t), 10, "accepted line")
        self.assertEqual(accepted_lines(self.r, t)[0][4], "127.0.0.3")

    BAD = [
        ("plain SMTP", b"EHLO client.test\r\n", "no PROXY signature"),
        ("v1 bad port", b"PROXY TCP4 127.0.0.9 127.0.0.1 99999 25\r\n", r"v1 header: bad port"),
        ("v1 family TCP5", b"PROXY TCP5 127.0.0.9 127.0.0.1 1 25\r\n", "unknown family"),
        ("v1 IPv6 address in TCP4", b"PROXY TCP4 ::1 ::1 1 25\r\n", "not of its family"),
        ("v1 over 107 octets", b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n",
         "longer than 107 octets"),
        ("v2 bad signature", b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c" + bytes(12),
         "no PROXY signature"),
        ("v2 family UNIX", v2(1, 0x31, bytes(216)), "unsupported family"),
        ("v2 over 1024 octets", SIG + b"\x21\x11\xff\xff", "longer than 1024 octets"),
        ("v2 bad TLV", v2_tcp4("127.0.0.9", tlvs=b"\x01\x00\x09ab"), "malformed TLV"),
    ]

    def test_bad_headers_are_closed_at_once_without_greeting(self):
        for name, data, why in self.BAD:
            with self.subTest(name):
                start = len(self.r.log())
                with Client(self.r.port, source="127.0.0.4") as c:
                    t0 = time.monotonic()
                    c.send(data)
                    self.assertTrue(c.wait_closed(3.0), "not closed")
                    self.assertEqual(c.buf, b"", "bytes sent on a bad header")
                    # Well before the 5 s header timeout: refused on sight.
                    self.assertLess(time.monotonic() - t0, 3.0)
                self.r.wait_log(r"connection from \[127\.0\.0\.4\] closed: bad PROXY header "
                                r"\(.*%s.*\)" % why, start=start)

    def test_truncated_header_is_closed_at_the_timeout(self):
        start = len(self.r.log())
        with Client(self.r.port, source="127.0.0.4") as c:
            t0 = time.monotonic()
            c.send(v2_tcp4("127.0.0.9")[:20])
            self.assertEqual(c.pending(4.0), b"", "an answer to a truncated header")
            self.assertTrue(c.wait_closed(6.0), "not closed at the header timeout")
            took = time.monotonic() - t0
        self.assertGreaterEqual(took, 4.0)
        self.assertEqual(c.buf, b"")
        self.r.wait_log(r"connection from \[127\.0\.0\.4\] closed: no PROXY header in time",
                        start=start)

    def test_max_connections_per_ip_counts_the_header_address(self):
        with Client(self.r.port) as a, Client(self.r.port) as b, Client(self.r.port) as c, \
                Client(self.r.port) as d:
            for x in (a, b):
                x.send(v2_tcp4("127.0.0.9"))
                self.assertReply(x.greeting(), 220, None)
            c.send(b"PROXY TCP4 127.0.0.9 127.0.0.1 40001 25\r\n")
            self.assertReply(c.reply(), 421, "4.7.0")
            # Every TCP connection is from 127.0.0.1; another client address passes.
            d.send(v2_tcp4("127.0.0.10"))
            self.assertReply(d.greeting(), 220, None)
        self.r.wait_log(r"connection refused: max-connections-per-ip reached")


class AuthThrottleThroughHeader(ReplyAsserts, unittest.TestCase):
    """auth-fail-limit 2: failures counted per header address, although every
    TCP connection comes from 127.0.0.1."""

    @classmethod
    def setUpClass(cls):
        cls.r = relayd(listens=[(PROXY, None)],
                       conf_extra=tls_conf() + "auth-users %s\nauth-fail-limit 2\n"
                       % auth_users_file())

    @classmethod
    def tearDownClass(cls):
        cls.r.cleanup()

    def tls_session(self, src):
        c = Client(self.r.port, timeout=30)
        self.addCleanup(c.close)
        c.send(v2_tcp4(src))
        self.assertReply(c.greeting(), 220, None)
        self.assertReply(c.ehlo(), 250, None)
        self.assertReply(c.starttls(), 220, "2.0.0")
        self.assertReply(c.ehlo(), 250, None)
        return c

    def test_failures_count_against_the_header_address(self):
        c = self.tls_session("127.0.0.21")
        for guess in ("guess1", "guess2"):
            self.assertReply(c.cmd("AUTH PLAIN " + plain_ir("alice", guess)), 535, "5.7.8")
        c = self.tls_session("127.0.0.21")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir("alice", "alice-secret")), 454, "4.7.0")
        self.r.wait_log(r"\[127\.0\.0\.21\]: 2 failed AUTH within")
        # Another client behind the same balancer is not held back.
        c = self.tls_session("127.0.0.22")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir("alice", "alice-secret")), 235, "2.7.0")


if __name__ == "__main__":
    unittest.main()

"""dlv_base.py - what the delivery integration tests share: a real relayd
(harness.Relayd) whose delivery worker asks a dnsmasq started by the test
and connects to fake MX servers on 127.0.0.x, all on one delivery port.

    class T(DeliveryCase):
        def test_x(self):
            dns = self.dns(mx=[("ex.test", "mx1.ex.test", 10)],
                           hosts={"mx1.ex.test": "127.0.0.2"})
            mx = self.mx("127.0.0.2")
            r = self.relayd(dns)
            qid = self.send(r, "s@snd.test", ["a@ex.test"])
            self.wait_status(r, qid, "a@ex.test", "sent")

Everything started through these helpers is stopped by addCleanup, also
when the test fails.
"""
import email
import email.policy
import re
import smtplib
import unittest

from fakes.dlv_dns import Dnsmasq, SilentDNS
from fakes.dlv_mx import FakeMX, Greeter421
from harness import Relayd, free_port

BODY = b"From: s@snd.test\r\nTo: a@ex.test\r\nSubject: delivery test\r\n\r\nHello.\r\n"


def delivery_reports(mx):
    """[(subject, [(action, status, final recipient)])] of each delivery
    report mx received, in order; raises if a message there is not one."""
    out = []
    with mx.lock:
        msgs = list(mx.messages)
    for m in msgs:
        if m.mail_from not in ("", "<>"):
            raise AssertionError("not a report (MAIL FROM %r)" % m.mail_from)
        msg = email.message_from_bytes(m.data, policy=email.policy.default)
        if msg.get_content_type() != "multipart/report":
            raise AssertionError("not a multipart/report: %r" % m.data[:300])
        status = msg.get_payload()[1].get_payload()
        out.append((msg["Subject"], [(s["Action"], s["Status"], s["Final-Recipient"])
                                     for s in status[1:]]))
    return out


class DeliveryCase(unittest.TestCase):
    """Retries fast (retry-min 1s) so that deferred mail comes back within a test."""

    BASE_CONF = ("retry-min 1s\nretry-max 2s\noutbound-tls none\n")

    def setUp(self):
        self.mx_port = free_port()

    def dns(self, mx=(), hosts=None, local=("test",), ptr=()):
        d = Dnsmasq(mx=mx, hosts=hosts, local=local, ptr=ptr)
        self.addCleanup(d.stop)
        return d

    def silent_dns(self):
        d = SilentDNS()
        self.addCleanup(d.stop)
        return d

    def mx(self, host, port=None, **kw):
        m = FakeMX(host, port or self.mx_port, **kw)
        self.addCleanup(m.stop)
        return m

    def greeter421(self, host, port=None):
        g = Greeter421(host, port or self.mx_port)
        self.addCleanup(g.stop)
        return g

    def relayd(self, dns, extra="", base=None, **kw):
        """A Relayd (kw: its other arguments) asking dns, delivering to mx_port."""
        conf = "dns-server 127.0.0.1:%d\ndelivery-port %d\n%s%s" % (
            dns.port, self.mx_port, self.BASE_CONF if base is None else base, extra)
        r = Relayd(conf_extra=conf, **kw)
        self.addCleanup(r.cleanup)
        return r

    def send(self, r, sender, rcpts, body=BODY):
        """Submits one message; returns its queue id."""
        with smtplib.SMTP("127.0.0.1", r.port, timeout=20) as s:
            s.ehlo("client.test")
            s.mail(sender)
            for rc in rcpts:
                code, msg = s.rcpt(rc)
                self.assertEqual((code, msg), (250, b"2.1.5 Ok"))
            code, msg = s.data(body)
            self.assertEqual(code, 250, msg)
        m = re.search(rb"queued as (\S+)", msg)
        self.assertIsNotNone(m, msg)
        return m.group(1).decode()

    def wait_status(self, r, qid, rcpt, status, timeout=20.0, start=0):
        """Waits for the delivery log line of rcpt; returns the match
        (groups: relay, dsn, text)."""
        rx = (r"%s: to=<%s>, relay=(\S+?),(?: conn_use=\d+,)? delay=[0-9.]+, "
              r"dsn=([0-9.]+), status=%s \((.*)\)" % (re.escape(qid), re.escape(rcpt), status))
        return r.wait_log(rx, timeout=timeout, start=start)

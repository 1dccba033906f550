"""test_smarthost_verify.py - a smarthost written `host:port` (MX lookup, no
brackets) with `tls=verify`, end to end (issue 8, point 5): dnsmasq serves
an MX for the smarthost's name pointing at a host name on 127.0.0.4; the
next hop there offers STARTTLS with a certificate the test's CA signed for
that host name, and `tls-ca-file` is that CA. The message arrives over
verified TLS, on the smarthost's port. A certificate for another name, or
from another CA, defers the message (4.7.5) and nothing is sent in
plaintext; with a second MX for the smarthost's name, the message goes
there instead.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_smarthost_verify
"""
import shutil
import tempfile
import unittest

from dlv_base import DeliveryCase
from e2e_util import make_ca, make_leaf
from harness import free_port

MX = [("relay.test", "mx.relay.test", 10), ("far.test", "mx.far.test", 10)]
HOSTS = {"mx.relay.test": "127.0.0.4", "mx.far.test": "127.0.0.2"}


class SmarthostVerify(DeliveryCase):
    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="relayd-sh-verify-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.ca = make_ca(self.tmp)

    def run_case(self, server_cert):
        """The smarthost's MX host serving server_cert; returns (relayd,
        smarthost fake, far.test's own MX fake, queue id)."""
        dns = self.dns(MX, HOSTS)
        port = free_port("127.0.0.4")
        sh = self.mx("127.0.0.4", port=port, tls_cert=server_cert)
        # The recipient domain's own MX must not be used: all mail goes to the smarthost.
        far = self.mx("127.0.0.2")
        r = self.relayd(dns, "smarthost relay.test:%d tls=verify\ntls-ca-file %s\n"
                        % (port, self.ca[0]))
        self.port = port
        qid = self.send(r, "s@snd.test", ["a@far.test"])
        return r, sh, far, qid

    def test_mx_of_the_smarthost_with_a_verified_certificate(self):
        r, sh, far, qid = self.run_case(make_leaf(self.tmp, self.ca, "mx.relay.test"))
        m = self.wait_status(r, qid, "a@far.test", "sent")
        self.assertEqual(m.group(1), "mx.relay.test[127.0.0.4]:%d" % self.port)
        msg = sh.wait_messages(1)[0]
        self.assertTrue(msg.tls)
        self.assertEqual(msg.rcpt_tos, ["a@far.test"])
        self.assertRegex(r.log(), r"%s: TLS with mx\.relay\.test\[127\.0\.0\.4\]: TLSv1\.[23]"
                         r".*, verified" % qid)
        self.assertEqual(far.messages, [])

    def test_second_mx_of_the_smarthost_when_the_first_fails_verification(self):
        dns = self.dns(MX + [("relay.test", "mx2.relay.test", 20)],
                       dict(HOSTS, **{"mx2.relay.test": "127.0.0.5"}))
        port = free_port("127.0.0.4")
        bad = self.mx("127.0.0.4", port=port, tls_cert=make_leaf(self.tmp, self.ca, "relay.test"))
        good = self.mx("127.0.0.5", port=port,
                       tls_cert=make_leaf(self.tmp, self.ca, "mx2.relay.test"))
        r = self.relayd(dns, "smarthost relay.test:%d tls=verify\ntls-ca-file %s\n"
                        % (port, self.ca[0]))
        qid = self.send(r, "s@snd.test", ["a@far.test"])
        m = self.wait_status(r, qid, "a@far.test", "sent")
        self.assertEqual(m.group(1), "mx2.relay.test[127.0.0.5]:%d" % port)
        self.assertTrue(good.wait_messages(1)[0].tls)
        self.assertEqual(bad.messages, [])
        self.assertEqual(bad.mail_options, [], "MAIL FROM was sent to the unverified MX")

    def assert_refused(self, server_cert):
        r, sh, far, qid = self.run_case(server_cert)
        m = self.wait_status(r, qid, "a@far.test", "deferred")
        self.assertEqual(m.group(2), "4.7.5")
        self.assertIn("TLS handshake with mx.relay.test[127.0.0.4] failed", m.group(3))
        # The retry (retry-min 1s) does not fall back to plaintext either.
        m = self.wait_status(r, qid, "a@far.test", "deferred", start=m.end())
        self.assertEqual(m.group(2), "4.7.5")
        # Never in plaintext, never to the recipient's MX.
        self.assertEqual(sh.messages, [])
        self.assertEqual(sh.mail_options, [], "MAIL FROM was sent to the smarthost")
        self.assertEqual(far.messages, [])
        self.assertNotRegex(r.log(), r"%s: .*status=sent" % qid)

    def test_certificate_for_another_name_defers(self):
        self.assert_refused(make_leaf(self.tmp, self.ca, "relay.test"))

    def test_certificate_from_another_ca_defers(self):
        other = make_ca(self.tmp, name="other-ca")
        self.assert_refused(make_leaf(self.tmp, other, "mx.relay.test"))


if __name__ == "__main__":
    unittest.main()

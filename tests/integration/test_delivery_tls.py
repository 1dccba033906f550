"""test_delivery_tls.py - outbound TLS, smarthosts, routes and `relayctl
route`/`stats` of the delivery worker, with a real relayd, dnsmasq and fake
MX servers (aiosmtpd with STARTTLS and AUTH) on 127.0.0.x."""
import os
import unittest

from dlv_base import DeliveryCase
from harness import free_port, make_cert, write_root_only

EX_MX = [("ex.test", "mx1.ex.test", 10), ("ex.test", "mx2.ex.test", 20)]
EX_HOSTS = {"mx1.ex.test": "127.0.0.2", "mx2.ex.test": "127.0.0.3",
            "relay.ex.test": "127.0.0.8"}


class TLSDelivery(DeliveryCase):
    def cert(self, cn):
        d = os.path.join(self.tmp(), cn)
        os.mkdir(d)
        return make_cert(d, cn=cn)

    def tmp(self):
        if not hasattr(self, "_tmp"):
            import tempfile
            import shutil
            self._tmp = tempfile.mkdtemp(prefix="relayd-dlv-tls-")
            self.addCleanup(shutil.rmtree, self._tmp, True)
        return self._tmp

    def test_starttls_when_offered(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        mx1 = self.mx("127.0.0.2", tls_cert=self.cert("mx1.ex.test"))
        r = self.relayd(dns, "outbound-tls may\n", base="retry-min 1s\n")
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        self.wait_status(r, qid, "a@ex.test", "sent")
        self.assertTrue(mx1.wait_messages(1)[0].tls)
        self.assertRegex(r.log(), r"%s: TLS with mx1.ex.test\[127.0.0.2\]: TLSv1\.[23]" % qid)

    def test_may_falls_back_to_plaintext_after_a_failed_handshake(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        mx1 = self.mx("127.0.0.2", tls_cert=self.cert("mx1.ex.test"), tls_broken=True)
        r = self.relayd(dns, "outbound-tls may\n", base="retry-min 1s\n")
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        m = self.wait_status(r, qid, "a@ex.test", "sent")
        self.assertEqual(m.group(1), "mx1.ex.test[127.0.0.2]:%d" % self.mx_port)
        self.assertFalse(mx1.wait_messages(1)[0].tls)
        self.assertIn("retrying mx1.ex.test[127.0.0.2] without STARTTLS", r.log())

    def test_verify_accepts_a_valid_chain_and_name(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        cert, key = self.cert("mx1.ex.test")
        mx1 = self.mx("127.0.0.2", tls_cert=(cert, key))
        r = self.relayd(dns, "outbound-tls verify\ntls-ca-file %s\n" % cert,
                        base="retry-min 1s\n")
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        self.wait_status(r, qid, "a@ex.test", "sent")
        self.assertTrue(mx1.wait_messages(1)[0].tls)
        self.assertRegex(r.log(), r"TLS with mx1.ex.test\[127.0.0.2\]: .*, verified")

    def test_verify_refuses_a_wrong_name(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        cert, key = self.cert("other.test")
        mx1 = self.mx("127.0.0.2", tls_cert=(cert, key))
        mx2 = self.mx("127.0.0.3", tls_cert=(cert, key))
        r = self.relayd(dns, "outbound-tls verify\ntls-ca-file %s\n" % cert,
                        base="retry-min 1s\n")
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        m = self.wait_status(r, qid, "a@ex.test", "deferred")
        self.assertEqual(m.group(2), "4.7.5")
        self.assertIn("TLS handshake with mx2.ex.test[127.0.0.3] failed", m.group(3))
        self.assertEqual(mx1.messages + mx2.messages, [])

    def test_verify_to_an_address_literal_checks_the_certificate_ip(self):
        # make_cert names 127.0.0.1 among its IP entries, not 127.0.0.6.
        dns = self.dns(EX_MX, EX_HOSTS)
        cert, key = self.cert("smarthost.test")
        good_port, bad_port = free_port("127.0.0.1"), free_port("127.0.0.6")
        good = self.mx("127.0.0.1", port=good_port, tls_cert=(cert, key))
        bad = self.mx("127.0.0.6", port=bad_port, tls_cert=(cert, key))
        r = self.relayd(dns, "tls-ca-file %s\nroute ok.test [127.0.0.1]:%d tls=verify\n"
                        "route ko.test [127.0.0.6]:%d tls=verify\n" % (cert, good_port, bad_port),
                        base="retry-min 1s\n")
        qid = self.send(r, "s@snd.test", ["a@ok.test"])
        self.wait_status(r, qid, "a@ok.test", "sent")
        self.assertTrue(good.wait_messages(1)[0].tls)
        qid = self.send(r, "s@snd.test", ["b@ko.test"])
        m = self.wait_status(r, qid, "b@ko.test", "deferred")
        self.assertEqual(m.group(2), "4.7.5")
        self.assertIn("TLS handshake with 127.0.0.6[127.0.0.6] failed", m.group(3))
        self.assertEqual(bad.messages, [])

    def test_smarthost_with_auth_over_starttls(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        port = free_port("127.0.0.6")
        sh = self.mx("127.0.0.6", port=port, tls_cert=self.cert("smarthost.test"),
                     auth={"alice": "s3cret"})
        mx1 = self.mx("127.0.0.2")
        authf = write_root_only(os.path.join(self.tmp(), "auth"), "alice s3cret\n")
        r = self.relayd(dns, "smarthost [127.0.0.6]:%d tls=starttls auth=%s\n" % (port, authf))
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        m = self.wait_status(r, qid, "a@ex.test", "sent")
        self.assertEqual(m.group(1), "127.0.0.6[127.0.0.6]:%d" % port)
        msg = sh.wait_messages(1)[0]
        self.assertTrue(msg.tls)
        self.assertEqual(msg.auth_user, "alice")
        self.assertEqual(mx1.messages, [])
        self.assertIn("authenticated to 127.0.0.6[127.0.0.6] as alice", r.log())

    def test_smarthost_rejecting_the_credentials_defers(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        port = free_port("127.0.0.6")
        sh = self.mx("127.0.0.6", port=port, tls_cert=self.cert("smarthost.test"),
                     auth={"alice": "right"})
        authf = write_root_only(os.path.join(self.tmp(), "auth"), "alice wrong\n")
        r = self.relayd(dns, "smarthost [127.0.0.6]:%d tls=starttls auth=%s\n" % (port, authf))
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        m = self.wait_status(r, qid, "a@ex.test", "deferred")
        self.assertIn("rejected the credentials", m.group(3))
        self.assertIn("535", m.group(3))
        self.assertEqual(sh.messages, [])

    def test_smarthost_smtps_with_auth_login(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        port = free_port("127.0.0.6")
        sh = self.mx("127.0.0.6", port=port, tls_cert=self.cert("smarthost.test"),
                     smtps=True, auth={"bob": "pw2"}, auth_exclude=["PLAIN"])
        authf = write_root_only(os.path.join(self.tmp(), "auth"), "bob pw2\n")
        r = self.relayd(dns, "smarthost [127.0.0.6]:%d tls=smtps auth=%s\n" % (port, authf))
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        self.wait_status(r, qid, "a@ex.test", "sent")
        msg = sh.wait_messages(1)[0]
        self.assertTrue(msg.tls)
        self.assertEqual(msg.auth_user, "bob")

    def test_second_smarthost_when_the_first_is_down(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        port = free_port("127.0.0.7")
        sh2 = self.mx("127.0.0.7", port=port)
        r = self.relayd(dns, "smarthost [127.0.0.6]:%d tls=none\nsmarthost [127.0.0.7]:%d "
                        "tls=none\n" % (free_port("127.0.0.6"), port))
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        m = self.wait_status(r, qid, "a@ex.test", "sent")
        self.assertEqual(m.group(1), "127.0.0.7[127.0.0.7]:%d" % port)
        sh2.wait_messages(1)

    def test_route_overrides_mx(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        port = free_port("127.0.0.8")
        relay = self.mx("127.0.0.8", port=port)
        mx1 = self.mx("127.0.0.2")
        other = self.mx("127.0.0.3", port=port)
        r = self.relayd(dns, "route ex.test [relay.ex.test]:%d tls=none\n"
                        "route other.test [127.0.0.3]:%d\n" % (port, port))
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        m = self.wait_status(r, qid, "a@ex.test", "sent")
        self.assertEqual(m.group(1), "relay.ex.test[127.0.0.8]:%d" % port)
        relay.wait_messages(1)
        self.assertEqual(mx1.messages, [])
        self.assertEqual(other.messages, [])

    def test_relayctl_route_and_stats(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        self.mx("127.0.0.2")
        r = self.relayd(dns, "route routed.test [127.0.0.9]:2526 tls=starttls\n")
        out = r.ctl("route", "a@ex.test")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("next hop: MX of ex.test, port %d" % self.mx_port, out.stdout)
        self.assertIn("ex.test. MX 10 mx1.ex.test.", out.stdout)
        self.assertRegex(out.stdout, r"1\. mx1\.ex\.test \(MX 10\): 127\.0\.0\.2:%d" %
                         self.mx_port)
        self.assertRegex(out.stdout, r"2\. mx2\.ex\.test \(MX 20\): 127\.0\.0\.3:%d" %
                         self.mx_port)
        self.assertIn("tls: none (outbound-tls)", out.stdout)

        out = r.ctl("route", "b@routed.test")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("route routed.test -> [127.0.0.9]:2526", out.stdout)
        self.assertIn("tls: starttls (tls= of the next hop)", out.stdout)
        self.assertIn("127.0.0.9:2526", out.stdout)

        out = r.ctl("route", "c@nx.test")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        # A failed plan goes to stderr, with what was found.
        self.assertIn("nx.test. MX (NXDOMAIN)", out.stderr)
        self.assertIn("error: 5.1.2", out.stderr)

        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        self.wait_status(r, qid, "a@ex.test", "sent")
        out = r.ctl("stats")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertRegex(out.stdout, r"connections_out\s+[1-9]")
        self.assertRegex(out.stdout, r"rcpt_sent\s+1")


if __name__ == "__main__":
    unittest.main()

"""test_delivery_mx.py - MX delivery by a real relayd (RFC 5321 section 5.1,
RFC 7505) against dnsmasq and fake MX servers on 127.0.0.x: primary and
backup MX, implicit MX, NXDOMAIN, null MX, DNS timeout, temporary and
permanent replies, per-recipient outcomes, connection reuse."""
import os
import signal
import unittest

from dlv_base import DeliveryCase
from harness import wait_until

EX_MX = [("ex.test", "mx1.ex.test", 10), ("ex.test", "mx2.ex.test", 20),
         ("snd.test", "mx.snd.test", 10)]
EX_HOSTS = {"mx1.ex.test": "127.0.0.2", "mx2.ex.test": "127.0.0.3",
            "mx.snd.test": "127.0.0.4", "imp.test": "127.0.0.5"}


class MXDelivery(DeliveryCase):
    def test_primary_mx(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        mx1 = self.mx("127.0.0.2")
        mx2 = self.mx("127.0.0.3")
        r = self.relayd(dns)
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        m = self.wait_status(r, qid, "a@ex.test", "sent")
        self.assertEqual(m.group(1), "mx1.ex.test[127.0.0.2]:%d" % self.mx_port)
        self.assertEqual(m.group(2), "2.0.0")
        msgs = mx1.wait_messages(1)
        self.assertEqual(msgs[0].rcpt_tos, ["a@ex.test"])
        self.assertEqual(msgs[0].mail_from, "s@snd.test")
        self.assertIn(b"Subject: delivery test", msgs[0].data)
        self.assertEqual(mx2.messages, [])

    def test_backup_when_primary_refuses_connections(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        mx2 = self.mx("127.0.0.3")
        r = self.relayd(dns)
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        m = self.wait_status(r, qid, "a@ex.test", "sent")
        self.assertEqual(m.group(1), "mx2.ex.test[127.0.0.3]:%d" % self.mx_port)
        mx2.wait_messages(1)
        self.assertRegex(r.log(), r"%s: connect to mx1.ex.test\[127.0.0.2\]:%d: "
                         r"Connection refused" % (qid, self.mx_port))

    def test_backup_when_primary_greets_421(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        g = self.greeter421("127.0.0.2")
        mx2 = self.mx("127.0.0.3")
        r = self.relayd(dns)
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        m = self.wait_status(r, qid, "a@ex.test", "sent")
        self.assertEqual(m.group(1), "mx2.ex.test[127.0.0.3]:%d" % self.mx_port)
        mx2.wait_messages(1)
        self.assertGreaterEqual(g.connections, 1)
        self.assertIn("refused to talk to me: 421 4.3.2", r.log())

    def test_implicit_mx(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        mx = self.mx("127.0.0.5")
        r = self.relayd(dns)
        qid = self.send(r, "s@snd.test", ["b@imp.test"])
        m = self.wait_status(r, qid, "b@imp.test", "sent")
        self.assertEqual(m.group(1), "imp.test[127.0.0.5]:%d" % self.mx_port)
        self.assertEqual(mx.wait_messages(1)[0].rcpt_tos, ["b@imp.test"])

    def test_ipv6_mx(self):
        dns = self.dns([("six.test", "mx6.six.test", 10)], {"mx6.six.test": "::1"})
        mx = self.mx("::1")
        r = self.relayd(dns)
        qid = self.send(r, "s@snd.test", ["v6@six.test"])
        m = self.wait_status(r, qid, "v6@six.test", "sent")
        self.assertEqual(m.group(1), "mx6.six.test[::1]:%d" % self.mx_port)
        self.assertEqual(mx.wait_messages(1)[0].rcpt_tos, ["v6@six.test"])

    def test_nxdomain_bounces_and_the_report_reaches_the_sender(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        snd = self.mx("127.0.0.4")
        r = self.relayd(dns)
        qid = self.send(r, "s@snd.test", ["x@nx.test"])
        m = self.wait_status(r, qid, "x@nx.test", "bounced")
        self.assertEqual(m.group(1), "none")
        self.assertEqual(m.group(2), "5.1.2")
        bounce = snd.wait_messages(1)[0]
        self.assertEqual(bounce.mail_from, "<>")  # aiosmtpd's spelling of the null sender
        self.assertEqual(bounce.rcpt_tos, ["s@snd.test"])
        self.assertIn(b"report-type=delivery-status", bounce.data)
        self.assertIn(b"5.1.2", bounce.data)

    def test_null_mx_bounces_without_connecting(self):
        dns = self.dns(EX_MX + [("null.test", ".", 0)], EX_HOSTS)
        r = self.relayd(dns)
        qid = self.send(r, "s@snd.test", ["x@null.test"])
        m = self.wait_status(r, qid, "x@null.test", "bounced")
        self.assertEqual(m.group(1), "none")
        self.assertEqual(m.group(2), "5.1.10")
        self.assertNotIn("%s: connect to" % qid, r.log())

    def test_dns_timeout_defers(self):
        dns = self.silent_dns()
        r = self.relayd(dns)
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        m = self.wait_status(r, qid, "a@ex.test", "deferred", timeout=40)
        self.assertEqual(m.group(1), "none")
        self.assertEqual(m.group(2), "4.4.3", "a DNS timeout is a directory server failure")
        self.assertNotIn("status=bounced", r.log())

    def test_451_then_success_on_retry(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        mx1 = self.mx("127.0.0.2", data=["451 4.3.0 Try again later"])
        r = self.relayd(dns)
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        m = self.wait_status(r, qid, "a@ex.test", "deferred")
        self.assertEqual(m.group(2), "4.3.0")
        self.assertIn("said: 451 4.3.0 Try again later (in reply to end of DATA)",
                      m.group(3))
        self.wait_status(r, qid, "a@ex.test", "sent", timeout=30, start=m.end())
        self.assertEqual(len(mx1.wait_messages(1)), 1)

    def test_550_bounces_and_the_report_reaches_the_sender(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        self.mx("127.0.0.2", rcpt={"nobody": "550 5.1.1 User unknown"})
        snd = self.mx("127.0.0.4")
        r = self.relayd(dns)
        qid = self.send(r, "s@snd.test", ["nobody@ex.test"])
        m = self.wait_status(r, qid, "nobody@ex.test", "bounced")
        self.assertEqual(m.group(2), "5.1.1")
        self.assertEqual(m.group(3), "host mx1.ex.test[127.0.0.2] said: 550 5.1.1 User "
                         "unknown (in reply to RCPT TO)")
        bounce = snd.wait_messages(1)[0]
        self.assertEqual(bounce.mail_from, "<>")  # aiosmtpd's spelling of the null sender
        self.assertIn(b"nobody@ex.test", bounce.data)
        self.assertIn(b"5.1.1", bounce.data)

    def test_mixed_recipient_outcomes(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        mx1 = self.mx("127.0.0.2", rcpt={"bad": "550 5.1.1 User unknown",
                                         "busy": "452 4.2.2 Mailbox full"})
        r = self.relayd(dns)
        qid = self.send(r, "s@snd.test", ["ok@ex.test", "bad@ex.test", "busy@ex.test"])
        self.wait_status(r, qid, "ok@ex.test", "sent")
        self.assertEqual(self.wait_status(r, qid, "bad@ex.test", "bounced").group(2), "5.1.1")
        self.assertEqual(self.wait_status(r, qid, "busy@ex.test", "deferred").group(2),
                         "4.2.2")
        self.assertEqual(mx1.wait_messages(1)[0].rcpt_tos, ["ok@ex.test"])

    def test_ten_messages_over_one_connection(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        # The first message is held at the MX while the other nine arrive.
        mx1 = self.mx("127.0.0.2", first_data_delay=3.0)
        # One connection per destination: the waiting messages reuse it.
        r = self.relayd(dns, "concurrency-per-destination 1\n")
        qids = [self.send(r, "s@snd.test", ["n%d@ex.test" % i]) for i in range(10)]
        for i, qid in enumerate(qids):
            self.wait_status(r, qid, "n%d@ex.test" % i, "sent", timeout=30)
        self.assertEqual(len(mx1.wait_messages(10)), 10)
        self.assertEqual(mx1.sessions, 1)
        self.assertRegex(r.log(), r"to=<n9@ex.test>, relay=mx1.ex.test\[127.0.0.2\]:\d+, "
                         r"conn_use=10, ")

    def test_concurrency_per_destination(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        # DATA is held 1.5 s: long enough that two deliveries overlap even
        # on a loaded machine, so the limit is reached and not passed.
        mx1 = self.mx("127.0.0.2", data_delay=1.5)
        r = self.relayd(dns, "concurrency-per-destination 2\n")
        qids = [self.send(r, "s@snd.test", ["c%d@ex.test" % i]) for i in range(6)]
        for i, qid in enumerate(qids):
            self.wait_status(r, qid, "c%d@ex.test" % i, "sent", timeout=30)
        self.assertEqual(mx1.max_active, 2)
        self.assertLessEqual(mx1.sessions, 2 * 3)

    def test_delivery_concurrency_in_all(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        mx1 = self.mx("127.0.0.2", data_delay=0.5)
        mx5 = self.mx("127.0.0.5", data_delay=0.5)
        r = self.relayd(dns, "delivery-concurrency 1\n")
        sent = [(self.send(r, "s@snd.test", [rc]), rc)
                for rc in ("a@ex.test", "b@imp.test", "c@ex.test", "d@imp.test")]
        for qid, rc in sent:
            self.wait_status(r, qid, rc, "sent", timeout=30)
        self.assertEqual(len(mx1.messages) + len(mx5.messages), 4)
        # One connection in all: the end-of-DATA waits at both servers never overlap.
        spans = sorted(mx1.intervals + mx5.intervals)
        self.assertEqual(len(spans), 4)
        for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
            self.assertLessEqual(e1, s2 + 0.05, spans)

    def test_delivery_reconnects_to_a_restarted_queue(self):
        dns = self.dns(EX_MX, EX_HOSTS)
        mx1 = self.mx("127.0.0.2")
        r = self.relayd(dns)
        r.allow_log(r"master: queue worker killed by signal 9; restarting")
        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        self.wait_status(r, qid, "a@ex.test", "sent")
        queue_pid = r.pids()["queue"]
        os.kill(queue_pid, signal.SIGKILL)
        r.wait_log(r"delivery: lost the queue")
        # The master restarts the queue; delivery finds it again by itself.
        wait_until(lambda: r.log().count("delivery: connected to the queue") >= 2, 20,
                   "delivery connected to the restarted queue")
        self.assertEqual(r.log().count("delivery: connected to the queue"), 2, r.log()[-3000:])
        qid2 = self.send(r, "s@snd.test", ["b@ex.test"])
        self.wait_status(r, qid2, "b@ex.test", "sent")
        self.assertEqual(len(mx1.wait_messages(2)), 2)


if __name__ == "__main__":
    unittest.main()

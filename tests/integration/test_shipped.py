"""test_shipped.py - relayd as shipped: without -d, so it daemonizes and
logs to syslog, with `user nobody` and a root-only (0600) TLS key. The
harness gives it a private /dev whose /dev/log it reads (shipped=True).
It stays up 10 s with the same workers, relays one message to a fake MX
found through dnsmasq, and the syslog lines show the message taken and
sent and no worker death (the harness fails the test on any at stop).
Then, after a reload (SIGHUP), this session's additions as shipped: a
message with a 5000-octet line leaves in lines of at most 998, the
client= line, and the master's /metrics counting both deliveries.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_shipped
"""
import os
import pwd
import re
import shutil
import signal
import smtplib
import ssl
import tempfile
import time
import unittest

from dlv_base import DeliveryCase
from harness import free_port, make_cert, proc_status
from test_metrics import scrape, value

UP_FOR = 10.0


@unittest.skipUnless(os.getuid() == 0 and shutil.which("unshare"),
                     "running relayd as shipped needs root (a private mount namespace) "
                     "and unshare")
class ShippedTest(DeliveryCase):
    def test_daemon_with_syslog_user_and_root_only_key(self):
        nobody = pwd.getpwnam("nobody").pw_uid
        dns = self.dns([("ex.test", "mx1.ex.test", 10)], {"mx1.ex.test": "127.0.0.2"})
        mx = self.mx("127.0.0.2")
        keydir = self.enterContext(tempfile.TemporaryDirectory())
        cert, key = make_cert(keydir)
        os.chmod(key, 0o600)
        os.chmod(keydir, 0o700)  # nobody could not even reach it
        mport = free_port()
        r = self.relayd(dns, "user nobody\ntls-cert %s\ntls-key %s\nmetrics-listen 127.0.0.1:%d\n"
                        % (cert, key, mport), shipped=True)
        pids = r.pids()
        self.assertEqual(set(pids), {"master", "intake", "queue", "delivery"}, pids)
        # a daemon: not our child, not in our session
        self.assertNotEqual(os.getsid(pids["master"]), os.getsid(0))
        self.assertEqual(set(proc_status(pids["master"], "Uid")), {"0"})
        for role in ("intake", "queue", "delivery"):
            self.assertEqual(set(proc_status(pids[role], "Uid")), {str(nobody)}, role)
        self.assertEqual(os.stat(r.state_dir).st_uid, nobody)

        # the workers stay up: the same pids for 10 s
        end = time.monotonic() + UP_FOR
        while time.monotonic() < end:
            self.assertEqual(r.pids(), pids, "a worker changed:\n" + r.log())
            time.sleep(0.5)

        # the root-only key was loaded: STARTTLS works
        with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as c:
            c.ehlo("client.test")
            self.assertTrue(c.has_extn("starttls"), r.log())
            ctx = ssl.create_default_context(cafile=cert)
            ctx.check_hostname = False
            self.assertEqual(c.starttls(context=ctx), (220, b"2.0.0 Ready to start TLS"))
            self.assertEqual(c.noop(), (250, b"2.0.0 Ok"))

        qid = self.send(r, "s@snd.test", ["a@ex.test"])
        m = self.wait_status(r, qid, "a@ex.test", "sent")
        self.assertEqual(m.group(1), "mx1.ex.test[127.0.0.2]:%d" % self.mx_port)
        self.assertEqual(m.group(2), "2.0.0")
        got = mx.wait_messages(1)
        self.assertEqual(got[0].rcpt_tos, ["a@ex.test"])
        self.assertIn(b"Subject: delivery test", got[0].data)
        self.assertEqual(r.pids(), pids, "a worker changed:\n" + r.log())

        # the lines came through syslog: facility mail (2), tagged relayd[pid]
        log = r.log()
        self.assertRegex(log, r"(?m)^<\d+>.*relayd\[%d\]: queue: %s: from=<s@snd\.test>, "
                         r"size=\d+, nrcpt=1, client=\[127\.0\.0\.1\]$" % (pids["queue"], qid))
        self.assertRegex(log, r"(?m)^<\d+>.*relayd\[%d\]: delivery: %s: to=<a@ex\.test>, .*"
                         r"status=sent " % (pids["delivery"], qid))
        for pri in re.findall(r"(?m)^<(\d+)>", log):
            self.assertEqual(int(pri) >> 3, 2, "facility of <%s>" % pri)
        self.assertRegex(log, r"(?m)^<\d+>.*relayd\[%d\]: intake: %s: client=unknown\[127\.0\.0\.1\]$"
                         % (pids["intake"], qid))

        # reloaded, the workers keep their pids and the new paths work as shipped
        os.kill(pids["master"], signal.SIGHUP)
        r.wait_log(r"master: configuration reloaded")
        self.assertEqual(r.pids(), pids, "a worker changed:\n" + r.log())
        long_body = b"Subject: long\r\n\r\n" + b"x" * 5000 + b"\r\n"
        qid2 = self.send(r, "s@snd.test", ["b@ex.test"], body=long_body)
        self.wait_status(r, qid2, "b@ex.test", "sent")
        got = mx.wait_messages(2)
        lines = got[1].data.split(b"\r\n")
        self.assertEqual(b"".join(lines[lines.index(b""):]), b"x" * 5000)
        self.assertLessEqual(max(len(x) for x in lines), 998)
        samples = {}
        end = time.monotonic() + 10
        while time.monotonic() < end:  # the master polls its workers once a second
            samples, _ = scrape(mport)
            if value(samples, "relayd_recipients_delivered_total") == 2:
                break
            time.sleep(0.3)
        self.assertEqual(value(samples, "relayd_recipients_delivered_total"), 2, samples)
        self.assertEqual(r.pids(), pids, "a worker changed:\n" + r.log())

        self.assertEqual(r.trouble(), [])
        rc = r.stop()
        self.assertEqual(rc, 0)
        self.assertEqual(r.instance_pids(), set())
        self.assertRegex(r.log(), r"master: stopped")


if __name__ == "__main__":
    unittest.main()

"""test_reload.py - a changed, valid config takes effect on reload, by
SIGHUP to the master and by `relayctl reload` alike (issue 8, point 5):
relaying for mynetworks and relay-domains, max-recipients, the smarthost;
and when the workers run as `user` and the TLS key or the config file is
readable by root only.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_reload
"""
import os
import re
import signal
import smtplib
import unittest

from e2e_util import conf_base, reload, submit, write_conf
from harness import Relayd, make_cert, wait_until
from intake_util import QUEUE_ROLES, ReplyAsserts, Upstream, dead_smarthost_conf, msg, token

INTAKE_QUEUE = ("intake", "queue")


class ReloadCase(ReplyAsserts):
    """The tests of both ways; a subclass names the way in HOW."""
    HOW = None

    def start(self, extra, roles=QUEUE_ROLES):
        self.r = Relayd(conf_extra=extra, roles=roles)
        self.addCleanup(self.r.cleanup)
        self.base = conf_base(self.r, extra)

    def change(self, extra, roles=INTAKE_QUEUE):
        write_conf(self.r, self.base, extra)
        reload(self.r, self.HOW, roles)

    def rcpt(self, address):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<s@lan.test>"), 250, "2.1.0")
        return c, c.cmd("RCPT TO:<%s>" % address)

    def test_mynetworks_narrowed_then_relay_domain_added(self):
        dead = dead_smarthost_conf()
        self.start(dead + "mynetworks 127.0.0.0/8\n")
        _, r = self.rcpt("a@far.test")
        self.assertReply(r, 250, "2.1.5", "127.0.0.1 in mynetworks")

        self.change(dead + "mynetworks 10.0.0.0/8\n")
        _, r = self.rcpt("a@far.test")
        self.assertReply(r, 554, "5.7.1", "127.0.0.1 no longer in mynetworks")
        self.assertRegex(self.r.log(), r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: "
                         r"554 5\.7\.1 .*to=<a@far\.test>")

        self.change(dead + "mynetworks 10.0.0.0/8\nrelay-domains ok.test\n")
        c, r = self.rcpt("b@ok.test")
        self.assertReply(r, 250, "2.1.5", "relay-domains ok.test added")
        self.assertReply(c.cmd("RCPT TO:<c@far.test>"), 554, "5.7.1", "still no relaying")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(msg("after reload"))
        qid = self.assertQueued(c.reply())
        self.r.wait_log(r"%s: from=<s@lan\.test>, size=\d+, nrcpt=1, client=\[127\.0\.0\.1\]"
                        % re.escape(qid))

    def test_max_recipients_lowered_and_raised(self):
        dead = dead_smarthost_conf()
        self.start(dead + "max-recipients 3\n")
        for limit in (3, 2, 5):
            if limit != 3:
                self.change(dead + "max-recipients %d\n" % limit)
            c, r = self.rcpt("r0@far.test")
            self.assertReply(r, 250, "2.1.5")
            for i in range(1, limit):
                self.assertReply(c.cmd("RCPT TO:<r%d@far.test>" % i), 250, "2.1.5",
                                 "recipient %d of %d" % (i + 1, limit))
            self.assertReply(c.cmd("RCPT TO:<over@far.test>"), 452, "4.5.3",
                             "recipient %d with max-recipients %d" % (limit + 1, limit))

    def test_restarted_worker_keeps_the_reloaded_config(self):
        dead = dead_smarthost_conf()
        self.start(dead + "max-recipients 3\n")
        self.change(dead + "max-recipients 1\n")
        # A bad file on disk now: a worker started after this must get the
        # running (reloaded) config, not the file.
        write_conf(self.r, self.base, dead + "max-recipients 1\nno-such-directive\n")
        pid = wait_until(lambda: self.r.pids().get("intake"), 10, "the intake worker")
        start = len(self.r.log())
        self.r.allow_log(r"master: intake worker killed by signal 9; restarting")
        os.kill(pid, signal.SIGKILL)
        self.r.wait_log(r"master: intake worker killed by signal 9; restarting", start=start)
        wait_until(lambda: self.r.pids().get("intake") not in (None, pid), 20, "a new intake")
        c, r = self.rcpt("a@far.test")
        self.assertReply(r, 250, "2.1.5")
        self.assertReply(c.cmd("RCPT TO:<b@far.test>"), 452, "4.5.3", "max-recipients 1")

    def test_worker_that_does_not_answer_refuses_the_reload(self):
        """Two phases: the queue worker, stopped, never answers PREPARE; the
        master refuses after its bound and aborts in every worker, so
        intake, which was ready, keeps the old mynetworks."""
        dead = dead_smarthost_conf()
        self.start(dead + "mynetworks 127.0.0.0/8\n")
        queue = self.r.pids()["queue"]
        os.kill(queue, signal.SIGSTOP)
        self.addCleanup(os.kill, queue, signal.SIGCONT)
        write_conf(self.r, self.base, dead + "mynetworks 10.0.0.0/8\n")
        mark = len(self.r.log())
        refused = r"reload refused: the queue worker did not answer; the running configuration stays"
        if self.HOW == "relayctl":
            p = self.r.ctl("reload", timeout=40)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertEqual(p.stderr, "relayd: %s\n" % refused)
        else:
            os.kill(self.r.master_pid, signal.SIGHUP)
        self.r.wait_log(r"master: " + refused, timeout=30, start=mark)
        self.r.wait_log(r"intake: reload aborted; the running configuration stays", start=mark)
        os.kill(queue, signal.SIGCONT)
        self.r.wait_log(r"queue: reload aborted; the running configuration stays", start=mark)
        self.assertNotRegex(self.r.log()[mark:], r"configuration reloaded")
        _, rep = self.rcpt("a@far.test")
        self.assertReply(rep, 250, "2.1.5", "127.0.0.1 still in mynetworks")
        self.assertEqual(self.r.pids()["queue"], queue)

    def test_smarthost_changed(self):
        with Upstream() as first, Upstream() as second:
            self.start(first.conf() + "retry-min 1s\n", roles=None)
            t1 = token("before")
            q1 = submit(self.r.port, "s@lan.test", ["a@far.test"], t1)
            first.wait_for(t1)
            self.r.wait_log(r"%s: to=<a@far\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d,"
                            r".* status=sent" % (q1, first.port))

            self.change(second.conf() + "retry-min 1s\n",
                        roles=("intake", "queue", "delivery"))
            t2 = token("after")
            q2 = submit(self.r.port, "s@lan.test", ["a@far.test"], t2)
            second.wait_for(t2)
            self.r.wait_log(r"%s: to=<a@far\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d,"
                            r".* status=sent" % (q2, second.port))
            self.assertEqual(first.find(t2), [], "mail went to the old smarthost")
            self.assertEqual(second.find(t1), [])


class ReloadBySighup(ReloadCase, unittest.TestCase):
    HOW = "sighup"


class ReloadByRelayctl(ReloadCase, unittest.TestCase):
    HOW = "relayctl"


@unittest.skipUnless(os.geteuid() == 0, "the workers drop to user nobody only when relayd "
                     "starts as root")
class ReloadAfterPrivilegeDrop(ReplyAsserts, unittest.TestCase):
    """With `user`, the workers run unprivileged; files only root may read
    (a TLS key, which the README says is read before the drop, or the
    config itself) must not stop a valid reload from taking effect."""

    def start(self, key_mode, conf_mode):
        r = self.r = Relayd(start=False, roles=QUEUE_ROLES)
        self.addCleanup(r.cleanup)
        cert, key = make_cert(r.dir)
        os.chmod(key, key_mode)
        self.base = r.conf + ("user nobody\ntls-cert %s\ntls-key %s\n%s"
                              % (cert, key, dead_smarthost_conf()))
        write_conf(r, self.base, "max-recipients 3\n")
        os.chmod(r.conf_path, conf_mode)
        r.start()

    def check_limit_lowered(self, how):
        write_conf(self.r, self.base, "max-recipients 1\n")
        reload(self.r, how, INTAKE_QUEUE)
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<s@lan.test>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<a@far.test>"), 250, "2.1.5")
        self.assertReply(c.cmd("RCPT TO:<b@far.test>"), 452, "4.5.3", "max-recipients 1")

    def test_reload_with_a_root_only_tls_key(self):
        self.start(0o600, 0o644)
        self.check_limit_lowered("relayctl")

    def test_reload_with_a_root_only_config(self):
        self.start(0o600, 0o600)
        self.check_limit_lowered("sighup")


class ListenersNeedARestart(unittest.TestCase):
    """The listening sockets are the master's, bound at start: a reload that
    changes the listen lines is refused (a restarted intake must never pair
    a socket with another line's mode, e.g. a public port taking PROXY)."""

    def test_changed_listen_lines_refuse_the_reload(self):
        r = Relayd(roles=QUEUE_ROLES)
        self.addCleanup(r.cleanup)
        port = r.port
        for change in ("listen 127.0.0.1:%d smtp proxy" % port,
                       "listen 127.0.0.1:%d submission" % port):
            with open(r.conf_path, "w") as f:
                f.write(r.conf.replace("listen 127.0.0.1:%d smtp" % port, change))
            p = r.ctl("reload")
            self.assertEqual(p.returncode, 1, change)
            self.assertIn("reload refused: listen lines changed (restart relayd for that)",
                          p.stderr)
        # The running configuration stays: the port still speaks plain SMTP,
        # and the unchanged file reloads.
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            self.assertEqual(s.noop()[0], 250)
        with open(r.conf_path, "w") as f:
            f.write(r.conf)
        self.assertEqual(r.ctl("reload").returncode, 0)


if __name__ == "__main__":
    unittest.main()

"""test_sendmail.py - the sendmail command (issue 12, point 1) with real
callers: bsd-mailx and a cron-style `sendmail -t` pipe relayed to a fake
smarthost; `sendmail -bs` driven by Python's smtplib over a pipe, with
relayd up and down; a message handed over while relayd is stopped,
delivered once it starts; a local user (nobody) who can drop mail but not
read another user's, and hostile drop files; the options and header
handling (-f, -F, -i, bare LF, Bcc removal, headers added), the Received:
line and the uid= log line; exit codes.

Run: cd tests/integration && BIN=bin /usr/bin/python3 -m unittest -v test_sendmail
"""
import os
import pwd
import re
import shutil
import smtplib
import stat
import subprocess
import tempfile
import unittest

from harness import BIN, RELAYCTL, Relayd, wait_until
from intake_util import Upstream, dead_smarthost_conf, headers_of, token

SENDMAIL = os.path.join(BIN, "sendmail")
NOBODY = pwd.getpwnam("nobody")
RUN_TIMEOUT = 30


def as_user(pw):
    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return drop


def public_copy(path):
    """A copy of a program that any user can run, wherever the tree is
    (make mutate's scratch copy is in a 0700 directory)."""
    d = tempfile.mkdtemp(prefix="relayd-public-")
    os.chmod(d, 0o755)
    dst = os.path.join(d, os.path.basename(path))
    shutil.copy(path, dst)
    os.chmod(dst, 0o755)
    return dst


def sendmail(r, args, stdin=b"", user=None):
    prog = public_copy(SENDMAIL) if user else SENDMAIL
    try:
        return subprocess.run([prog, "-C", r.conf_path] + list(args), input=stdin,
                              capture_output=True, timeout=RUN_TIMEOUT,
                              preexec_fn=as_user(user) if user else None)
    finally:
        if user:
            shutil.rmtree(os.path.dirname(prog), True)


def header(content, name):
    return [v for n, v in headers_of(content) if n.lower() == name.lower()]


def maildrop(r):
    return os.path.join(r.state_dir, "maildrop")


def warm_up(r, up):
    """One message through: every worker is up (a stop right after start
    could catch a worker before its signal handlers exist)."""
    t = token()
    p = sendmail(r, ["warm@example.org"], b"Subject: %s\n\nx\n" % t.encode())
    assert p.returncode == 0, p.stderr
    up.wait_for(t)


def dropped(r):
    return sorted(f for f in os.listdir(maildrop(r)) if f.startswith("m."))


class PipeSock:
    """A subprocess's stdin/stdout as the socket smtplib talks to."""

    def __init__(self, proc):
        self.proc = proc

    def sendall(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def makefile(self, mode):
        return self.proc.stdout

    def close(self):
        if not self.proc.stdin.closed:
            self.proc.stdin.close()


class PipeSMTP(smtplib.SMTP):
    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        super().__init__()

    def _get_socket(self, host, port, timeout):
        return PipeSock(self.proc)


class SendmailTest(unittest.TestCase):
    def setUp(self):
        self.up = Upstream().__enter__()
        self.addCleanup(self.up.stop)

    def relayd(self, extra="", **kw):
        r = Relayd(conf_extra=self.up.conf() + extra, **kw)
        self.addCleanup(r.cleanup)
        return r

    def test_mailx_delivers(self):
        r = self.relayd()
        t = token()
        work = tempfile.mkdtemp(prefix="relayd-mailx-")
        self.addCleanup(shutil.rmtree, work, True)
        wrapper = os.path.join(work, "sendmail")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nexec %s -C %s "$@"\n' % (SENDMAIL, r.conf_path))
        os.chmod(wrapper, 0o755)
        mailrc = os.path.join(work, "mailrc")
        with open(mailrc, "w") as f:
            f.write("set sendmail=%s\n" % wrapper)
        env = dict(os.environ, MAILRC=mailrc, HOME=work)
        p = subprocess.run(["mailx", "-s", "report " + t, "ops@example.org"],
                           input=b"disk is fine\n", env=env, capture_output=True,
                           timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.up.wait_for(t)[0]
        self.assertEqual(m.rcpt_tos, ["ops@example.org"])
        self.assertEqual(m.mail_from, "root@relayd.test")
        self.assertEqual(header(m.data, "Subject"), ["report " + t])
        self.assertIn(b"disk is fine\r\n", m.data)

    def test_cron_style_t_pipe(self):
        r = self.relayd()
        t = token()
        # What cron writes: bare LF, To:, and here Cc:/Bcc: and no From/Date/Message-ID.
        msg = ("To: admin@example.org\nCc: Ops Team <ops@example.org>, dev@example.org\n"
               "Bcc: hidden@example.org\nSubject: Cron <root@host> run-parts %s\n\n"
               "line one\nline two\n" % t).encode()
        p = subprocess.run("printf '%%s' \"$MSG\" | %s -C %s -t -i" % (SENDMAIL, r.conf_path),
                           shell=True, env=dict(os.environ, MSG=msg.decode()),
                           capture_output=True, timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.up.wait_for(t)[0]
        self.assertEqual(sorted(m.rcpt_tos), ["admin@example.org", "dev@example.org",
                                              "hidden@example.org", "ops@example.org"])
        self.assertNotIn(b"hidden", m.data, "Bcc: must not reach the recipients")
        self.assertEqual(header(m.data, "Bcc"), [])
        self.assertIn(b"line one\r\nline two\r\n", m.data)
        self.assertNotRegex(m.data, rb"[^\r]\n", "a bare LF went out")
        # root's full name (passwd's gecos) is "root".
        self.assertEqual(header(m.data, "From"), ["root <root@relayd.test>"])
        self.assertEqual(len(header(m.data, "Date")), 1)
        self.assertRegex(header(m.data, "Message-ID")[0], r"^<[^<>@]+@relayd\.test>$")
        rec = header(m.data, "Received")[0]
        self.assertRegex(rec, r"^by relayd\.test \(relayd, from userid 0\) id \w+; ")
        qid = re.search(r"id (\w+);", rec).group(1)
        r.wait_log(r"%s: uid=0 from=<root@relayd\.test>" % qid)
        r.wait_log(r"%s: from=<root@relayd\.test>, size=\d+, nrcpt=4, client=\[local\]" % qid)

    def test_bs_with_smtplib_over_a_pipe(self):
        r = self.relayd()
        t = token()
        c = PipeSMTP([SENDMAIL, "-C", r.conf_path, "-bs"])
        self.addCleanup(c.proc.stderr.close)
        self.addCleanup(c.proc.stdout.close)
        self.addCleanup(lambda: c.proc.poll() is None and c.proc.kill())
        code, greeting = c.connect()
        self.assertEqual(code, 220, greeting)
        code, ehlo = c.ehlo("client.test")
        self.assertEqual(code, 250)
        self.assertNotIn(b"STARTTLS", ehlo, "no TLS on a local pipe")
        refused = c.sendmail("app@lan.test", ["one@example.org", "two@example.org"],
                             "Subject: bs %s\r\n\r\nvia -bs\r\n" % t)
        self.assertEqual(refused, {})
        c.quit()
        self.assertEqual(c.proc.wait(timeout=RUN_TIMEOUT), 0)
        m = self.up.wait_for(t)[0]
        self.assertEqual(m.mail_from, "app@lan.test")
        self.assertEqual(sorted(m.rcpt_tos), ["one@example.org", "two@example.org"])
        self.assertRegex(header(m.data, "Received")[0], r"^by relayd\.test \(relayd, from userid 0\)")
        # Our own local client's mail: Date: and Message-ID: added by intake.
        self.assertEqual(len(header(m.data, "Message-ID")), 1)

    def test_bs_while_stopped_drops_and_is_delivered_after_start(self):
        r = self.relayd()
        warm_up(r, self.up)
        r.stop()
        t = token()
        c = PipeSMTP([SENDMAIL, "-C", r.conf_path, "-bs"])
        self.addCleanup(c.proc.stderr.close)
        self.addCleanup(c.proc.stdout.close)
        self.addCleanup(lambda: c.proc.poll() is None and c.proc.kill())
        self.assertEqual(c.connect()[0], 220)
        self.assertEqual(c.ehlo("client.test")[0], 250)
        self.assertTrue(c.has_extn("pipelining"))
        # The same replies as intake's: a bad path, a transaction out of order.
        self.assertEqual(c.docmd("RCPT TO:<a@example.org>"), (503, b"5.5.1 Error: need MAIL command"))
        self.assertEqual(c.mail("bad path")[0], 501)
        c.rset()
        refused = c.sendmail("app@lan.test", ["down@example.org"],
                             "Subject: bs-down %s\r\n\r\n.leading dot\r\n" % t)
        self.assertEqual(refused, {})
        self.assertRegex(c.noop()[1], rb"^2\.0\.0")
        c.quit()
        self.assertEqual(c.proc.wait(timeout=RUN_TIMEOUT), 0)
        self.assertEqual(len(dropped(r)), 1)
        r.start()
        m = self.up.wait_for(t)[0]
        self.assertEqual(m.mail_from, "app@lan.test")
        self.assertEqual(m.rcpt_tos, ["down@example.org"])
        self.assertIn(b"\r\n.leading dot\r\n", m.data)
        self.assertRegex(header(m.data, "Received")[0], r"^by relayd\.test \(relayd, from userid 0\)")

    def test_message_sent_while_stopped_is_delivered_after_start(self):
        r = self.relayd()
        warm_up(r, self.up)
        r.stop()
        t = token()
        p = sendmail(r, ["-v", "late@example.org"], b"Subject: %s\n\nwhile down\n" % t.encode())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"relayd will take the message from", p.stdout)
        self.assertEqual(len(dropped(r)), 1)
        self.assertEqual(self.up.find(t), [])
        r.start()
        m = self.up.wait_for(t)[0]
        self.assertEqual(m.rcpt_tos, ["late@example.org"])
        self.assertRegex(header(m.data, "Received")[0], r"^by relayd\.test \(relayd, from userid 0\)")
        wait_until(lambda: dropped(r) == [], 10, "the picked-up file removed")
        r.wait_log(r": uid=0 from=<root@relayd\.test>")

    def test_dropped_while_running_is_picked_up_at_once(self):
        """A file that arrives while relayd runs (sendmail fell back) is seen by inotify."""
        r = self.relayd()
        t = token()
        # Stop only the socket's way in: sendmail then must drop.
        os.rename(os.path.join(r.state_dir, "submit.sock"), os.path.join(r.dir, "hidden.sock"))
        self.addCleanup(lambda: os.path.exists(os.path.join(r.dir, "hidden.sock")) and os.rename(
            os.path.join(r.dir, "hidden.sock"), os.path.join(r.state_dir, "submit.sock")))
        p = sendmail(r, ["now@example.org"], b"Subject: %s\n\nx\n" % t.encode())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.up.wait_for(t, timeout=15)

    def test_no_maildrop_is_tempfail(self):
        r = self.relayd(start=False)  # never started: no maildrop, no socket
        p = sendmail(r, ["x@example.org"], b"Subject: s\n\nx\n")
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertIn(b"cannot queue the message", p.stderr)

    def test_f_F_and_existing_headers(self):
        r = self.relayd()
        t = token()
        p = sendmail(r, ["-f", "alice@lan.test", "-F", "Alice Q. Doe", "bob@example.org"],
                     b"Subject: %s\n\nhi\n" % t.encode())
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.up.wait_for(t)[0]
        self.assertEqual(m.mail_from, "alice@lan.test")
        self.assertEqual(header(m.data, "From"), ['"Alice Q. Doe" <alice@lan.test>'])
        # Headers the message has are not added again.
        t2 = token()
        own = ("From: Someone <s@lan.test>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
               "Message-ID: <own@lan.test>\nSubject: %s\n\nx\n" % t2).encode()
        self.assertEqual(sendmail(r, ["-f<>", "bob@example.org"], own).returncode, 0)
        m = self.up.wait_for(t2)[0]
        self.assertEqual(m.mail_from, "<>")  # aiosmtpd's way of saying null sender
        self.assertEqual(header(m.data, "From"), ["Someone <s@lan.test>"])
        self.assertEqual(header(m.data, "Message-ID"), ["<own@lan.test>"])
        self.assertEqual(header(m.data, "Date"), ["Mon, 1 Jan 2024 00:00:00 +0000"])

    def test_8bit_content_arrives_intact(self):
        r = self.relayd()
        t = token()
        p = sendmail(r, ["a@example.org"], "Subject: %s\n\ncaf\u00e9\n".encode() % t.encode())
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.up.wait_for(t)[0]
        self.assertIn("caf\u00e9\r\n".encode(), m.data)

    def test_dot_ends_input_unless_i(self):
        r = self.relayd()
        t1, t2 = token(), token()
        body = "Subject: %s\n\nbefore\n.\nafter\n"
        p = sendmail(r, ["a@example.org"], (body % t1).encode())
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.up.wait_for(t1)[0]
        self.assertIn(b"before\r\n", m.data)
        self.assertNotIn(b"after", m.data)
        for flag in ("-i", "-oi"):
            t2 = token()
            p = sendmail(r, [flag, "-oem", "-odb", "a@example.org"], (body % t2).encode())
            self.assertEqual(p.returncode, 0, p.stderr)
            m = self.up.wait_for(t2)[0]
            self.assertIn(b"before\r\n.\r\nafter\r\n", m.data, flag)

    def test_unqualified_recipient_and_exit_codes(self):
        r = self.relayd("max-message-size 2K\n")
        t = token()
        p = sendmail(r, ["root"], b"Subject: %s\n\nx\n" % t.encode())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.up.wait_for(t)[0].rcpt_tos, ["root@relayd.test"])
        self.assertEqual(sendmail(r, [], b"Subject: s\n\nx\n").returncode, 64)  # EX_USAGE
        self.assertEqual(sendmail(r, ["-t"], b"Subject: s\n\nx\n").returncode, 64)
        self.assertEqual(sendmail(r, ["-bz"], b"").returncode, 64)
        big = b"Subject: s\n\n" + (b"x" * 70 + b"\n") * 40
        p = sendmail(r, ["a@example.org"], big)
        self.assertEqual(p.returncode, 65, p.stderr)  # EX_DATAERR
        self.assertIn(b"max-message-size", p.stderr)
        p = subprocess.run([SENDMAIL, "-C", "/nonexistent/relayd.conf", "a@example.org"],
                           input=b"x\n", capture_output=True, timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 78)  # EX_CONFIG

    def test_more_recipients_than_max_recipients(self):
        """Refused by sendmail at once; a drop file over the limit is set aside, not retried."""
        r = self.relayd("max-recipients 2\n")
        warm_up(r, self.up)
        p = sendmail(r, ["a@example.org", "b@example.org", "c@example.org"], b"Subject: s\n\nx\n")
        self.assertEqual(p.returncode, 65, p.stderr)  # EX_DATAERR
        self.assertIn(b"3 recipients; relayd takes at most 2 (max-recipients)", p.stderr)
        self.assertEqual(dropped(r), [])
        r.stop()
        t = token()
        with open(os.path.join(maildrop(r), "m.over"), "w") as f:
            f.write("relayd-maildrop 1\nfrom root@relayd.test\nto a@example.org\nto b@example.org\n"
                    "to c@example.org\n\nSubject: %s\r\n\r\nx\r\n" % t)
        r.start()
        r.wait_log(r"maildrop: m\.over from uid 0 refused: 3 recipients, max-recipients is 2; "
                   r"kept as bad\.over", timeout=15)
        self.assertEqual(dropped(r), [])
        self.assertTrue(os.path.exists(os.path.join(maildrop(r), "bad.over")))
        # Within the limit, the next one goes through: the pickup did not stop.
        t2 = token()
        self.assertEqual(sendmail(r, ["a@example.org", "b@example.org"],
                                  b"Subject: %s\n\nx\n" % t2.encode()).returncode, 0)
        self.up.wait_for(t2)
        self.assertEqual(self.up.find(t), [])

    def test_bp_lists_and_q_flushes(self):
        self.up.stop()
        r = Relayd(conf_extra=dead_smarthost_conf())
        self.addCleanup(r.cleanup)
        t = token()
        self.assertEqual(sendmail(r, ["-f", "%s@lan.test" % t, "a@example.org"],
                                  b"Subject: s\n\nx\n").returncode, 0)
        wait_until(lambda: t in sendmail(r, ["-bp"]).stdout.decode(), 10, "the queue listing")
        p = sendmail(r, ["-q"])
        self.assertEqual(p.returncode, 0, p.stderr)
        r.allow_log(r"status=deferred")


@unittest.skipUnless(os.geteuid() == 0, "needs root: workers as daemon, a sender as nobody")
class LocalUserTest(unittest.TestCase):
    """Workers run as `daemon`; `nobody` is an ordinary local user."""

    def start(self, up):
        r = Relayd(conf_extra="user daemon\n" + up.conf(), start=False)
        self.addCleanup(r.cleanup)
        os.chmod(r.dir, 0o755)  # the harness's temp dir is 0700
        r.start()
        return r

    def test_nobody_sends_through_the_socket_as_itself(self):
        with Upstream() as up:
            r = self.start(up)
            t = token()
            p = sendmail(r, ["u@example.org"], b"Subject: %s\n\nx\n" % t.encode(), user=NOBODY)
            self.assertEqual(p.returncode, 0, p.stderr)
            m = up.wait_for(t)[0]
            self.assertEqual(m.mail_from, "nobody@relayd.test")
            self.assertRegex(header(m.data, "Received")[0],
                             r"^by relayd\.test \(relayd, from userid %d\)" % NOBODY.pw_uid)
            r.wait_log(r": uid=%d from=<nobody@relayd\.test>" % NOBODY.pw_uid)

    def test_nobody_drops_but_cannot_read_others_drops(self):
        with Upstream() as up:
            r = self.start(up)
            drop = maildrop(r)
            st = os.stat(drop)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o3733)
            self.assertEqual(st.st_uid, pwd.getpwnam("daemon").pw_uid)
            self.assertEqual(stat.S_IMODE(os.stat(r.state_dir).st_mode), 0o711)
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(r.state_dir, "control.sock")).st_mode), 0o600)
            # The state dir is traversable now; control.sock still is not for others.
            relayctl = public_copy(RELAYCTL)
            self.addCleanup(shutil.rmtree, os.path.dirname(relayctl), True)
            p = subprocess.run([relayctl, "-f", r.conf_path, "status"], capture_output=True,
                               text=True, timeout=RUN_TIMEOUT, preexec_fn=as_user(NOBODY))
            self.assertEqual(p.returncode, 1)
            self.assertIn("control.sock: Permission denied", p.stderr)
            p = sendmail(r, ["-bp"], user=NOBODY)
            self.assertEqual(p.returncode, 69)  # EX_UNAVAILABLE
            self.assertIn(b"control.sock: Permission denied", p.stderr)
            warm_up(r, up)
            r.stop()
            t_root, t_nobody = token(), token()
            self.assertEqual(sendmail(r, ["secret@example.org"],
                                      b"Subject: %s\n\nroot's secret\n" % t_root.encode()).returncode, 0)
            [root_file] = dropped(r)
            p = sendmail(r, ["n@example.org"], b"Subject: %s\n\nmine\n" % t_nobody.encode(),
                         user=NOBODY)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(len(dropped(r)), 2)
            fst = os.stat(os.path.join(drop, root_file))
            self.assertEqual(stat.S_IMODE(fst.st_mode), 0o640)
            self.assertEqual(fst.st_gid, pwd.getpwnam("daemon").pw_gid)
            # nobody can neither list the drop nor read root's file, nor remove it.
            probe = ("import os,sys\n"
                     "for f in (lambda: os.listdir(sys.argv[1]), lambda: open(sys.argv[2]).read(),"
                     " lambda: os.unlink(sys.argv[2])):\n"
                     "    try:\n        f(); print('ALLOWED')\n"
                     "    except PermissionError: print('DENIED')\n")
            p = subprocess.run(["/usr/bin/python3", "-c", probe, drop,
                                os.path.join(drop, root_file)], capture_output=True, text=True,
                               timeout=RUN_TIMEOUT, preexec_fn=as_user(NOBODY))
            self.assertEqual(p.stdout.split(), ["DENIED"] * 3, p.stderr)
            r.start()
            m_root = up.wait_for(t_root)[0]
            m_nobody = up.wait_for(t_nobody)[0]
            self.assertRegex(header(m_root.data, "Received")[0], r"from userid 0\)")
            self.assertRegex(header(m_nobody.data, "Received")[0],
                             r"from userid %d\)" % NOBODY.pw_uid)
            self.assertEqual(m_nobody.mail_from, "nobody@relayd.test")
            wait_until(lambda: dropped(r) == [], 10, "the drop emptied")

    def test_hostile_drop_files_are_refused_and_do_not_stop_the_pickup(self):
        with Upstream() as up:
            r = self.start(up)
            warm_up(r, up)
            drop = maildrop(r)
            long_name = "m." + "x" * 253
            t_link = token()
            hostile = (
                "import os,sys\n"
                "d = sys.argv[1]\n"
                "open(os.path.join(d, 'm.0-garbage'), 'w').write('not a drop file')\n"
                "open(os.path.join(d, %r), 'w').write('x')\n"
                "os.symlink('/etc/shadow', os.path.join(d, 'm.1-symlink'))\n"
                "os.mkdir(os.path.join(d, 'm.2-dir'))\n"
                "ok = 'relayd-maildrop 1\\nfrom nobody@relayd.test\\nto x@example.org\\n\\n"
                "Subject: %s\\r\\n\\r\\nx\\r\\n'\n"
                "open(os.path.join(d, 't.own'), 'w').write(ok)\n"
                "os.chmod(os.path.join(d, 't.own'), 0o640)\n"
                "os.link(os.path.join(d, 't.own'), os.path.join(d, 'm.3-hardlink'))\n"
                "os.rename(os.path.join(d, 't.own'), os.path.join(d, 'm.4-linked'))\n"
                % (long_name, t_link))
            p = subprocess.run(["/usr/bin/python3", "-c", hostile, drop], capture_output=True,
                               text=True, timeout=RUN_TIMEOUT, preexec_fn=as_user(NOBODY))
            self.assertEqual(p.returncode, 0, p.stderr)
            for name, why in (("m.0-garbage", "malformed file"), ("m.1-symlink", "Too many levels of symbolic links"),
                              ("m.2-dir", "not a regular file"), ("m.3-hardlink", "a hard link"),
                              ("m.4-linked", "a hard link")):
                r.wait_log(r"maildrop: %s from uid \d+ refused: %s; kept as bad\.%s"
                           % (name, why, name[2:]), timeout=15)
            r.wait_log(r"maildrop: m\.x+ from uid %d refused: malformed file; removed"
                       % NOBODY.pw_uid, timeout=15)
            self.assertEqual(dropped(r), [])
            self.assertEqual(up.find(t_link), [], "a hard-linked file was taken")
            # The pickup goes on: a proper drop after them is delivered.
            r.stop()
            t = token()
            self.assertEqual(sendmail(r, ["ok@example.org"], b"Subject: %s\n\nx\n" % t.encode(),
                                      user=NOBODY).returncode, 0)
            r.start()
            up.wait_for(t)


if __name__ == "__main__":
    unittest.main()

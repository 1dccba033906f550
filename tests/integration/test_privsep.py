"""Privilege separation as shipped (issue 9, points 1-3): each worker is a
fresh program holding only its part of the configuration; a reload with
`user nobody` and root-only secret files takes effect in every process or
in none; the state dir, the queue files and the two sockets keep other
local users out.

Secrets are looked for in the workers' memory itself (/proc/PID/mem, as
root): a password that the delivery worker holds must not be found in
intake or the queue, the server key not in delivery or the queue."""
import grp
import os
import pwd
import secrets
import shutil
import smtplib
import socket
import stat
import struct
import subprocess
import tempfile
import unittest

from harness import RELAYD, RELAYCTL, Relayd, free_port, proc_status, write_root_only
from intake_util import (USERS, Upstream, auth_users_file, cert, plain_ir, token)

NOBODY = pwd.getpwnam("nobody")


def read(path):
    with open(path) as f:
        return f.read()


# A mapping larger than this is not a worker's data: under `make sanitize`
# ASan's shadow memory (its own bookkeeping, 256 MiB and 14 TiB mapped at
# fixed addresses) is the only one.
HUGE_MAPPING = 1 << 32
READ_CHUNK = 16 << 20


def memory_has(pid, needle):
    """True when bytes needle are anywhere in the readable memory of pid
    (read chunk by chunk, overlapping so that no needle is cut in two)."""
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if not perms.startswith("r") or line.rstrip().endswith(("[vvar]", "[vsyscall]")):
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            if hi - lo > HUGE_MAPPING:
                continue
            for at in range(lo, hi, READ_CHUNK):
                try:
                    mem.seek(at)
                    if needle in mem.read(min(hi, at + READ_CHUNK + len(needle)) - at):
                        return True
                except (OSError, ValueError, OverflowError):
                    break  # an unreadable mapping (a guard page)
    return False


def exe_base(pid):
    """Where the relayd program is mapped in pid (a fresh exec with ASLR on
    gets a base of its own; a forked child keeps its parent's)."""
    exe = os.path.realpath("/proc/%d/exe" % pid)
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            if line.rstrip().endswith(" " + exe):
                return line.split("-")[0]
    raise AssertionError("%s is not mapped in pid %d" % (exe, pid))


def key_marker(key_path):
    """A line of the key's base64 body: present wherever the key is held."""
    with open(key_path) as f:
        lines = [l.strip() for l in f if l.strip() and not l.startswith("-----")]
    return lines[len(lines) // 2].encode()


def relay_ok(port, rcpt="someone@example.org"):
    """The RCPT reply code for an outside recipient from 127.0.0.1."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        c.mail("sender@client.test")
        return c.rcpt(rcpt)


def auth_code(port, user, password):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        c.starttls()
        c.ehlo("client.test")
        return c.docmd("AUTH", "PLAIN " + plain_ir(user, password))


@unittest.skipUnless(os.geteuid() == 0, "needs root: user nobody, /proc/PID/mem, chown")
class PrivsepTest(unittest.TestCase):
    def setUp(self):
        self.tmp = self.enterContext(tempfile.TemporaryDirectory())
        c, k = cert()
        self.key = write_root_only(os.path.join(self.tmp, "server.key"), read(k))
        self.cert = c
        self.users = write_root_only(os.path.join(self.tmp, "users"), read(auth_users_file()))
        self.smart_pass = "SmartPass-" + secrets.token_hex(12)
        self.smart_auth = write_root_only(os.path.join(self.tmp, "smart.auth"),
                                    "relayuser %s\n" % self.smart_pass)

    def conf(self, mynetworks="127.0.0.1/32", extra=""):
        return ("user nobody\nmynetworks %s\ntls-cert %s\ntls-key %s\nauth-users %s\n"
                "smarthost [127.0.0.1]:%d tls=may auth=%s\nretry-min 1h\n%s"
                % (mynetworks, self.cert, self.key, self.users, free_port(), self.smart_auth, extra))

    def start(self, shipped=False, **kw):
        r = Relayd(conf_extra=self.conf(**kw), shipped=shipped)
        self.addCleanup(r.cleanup)
        pids = r.pids()
        return r, pids

    def rewrite_conf(self, r, **kw):
        base = r.conf.split("user nobody")[0]
        with open(r.conf_path, "w") as f:
            f.write(base + self.conf(**kw))

    def test_each_worker_holds_only_its_part(self):
        r, pids = self.start()
        # Sanity: the scan finds what a process does hold.
        self.assertTrue(memory_has(pids["delivery"], self.smart_pass.encode()),
                        "delivery should hold the smarthost password")
        self.assertTrue(memory_has(pids["intake"], key_marker(self.key)),
                        "intake should hold the server key")
        for role in ("intake", "queue"):
            self.assertFalse(memory_has(pids[role], self.smart_pass.encode()),
                             "%s holds the smarthost password" % role)
        for role in ("delivery", "queue"):
            self.assertFalse(memory_has(pids[role], key_marker(self.key)),
                             "%s holds the server TLS key" % role)
        alice_hash = read(self.users).split("alice:")[1].split("\n")[0].encode()
        for role in ("delivery", "queue"):
            self.assertFalse(memory_has(pids[role], alice_hash), "%s holds auth-users" % role)

    def test_workers_are_fresh_programs_as_nobody(self):
        r, pids = self.start()
        aslr = read("/proc/sys/kernel/randomize_va_space").strip() != "0"
        self.assertEqual(set(proc_status(pids["master"], "Uid")), {"0"})
        for role in ("intake", "queue", "delivery"):
            pid = pids[role]
            self.assertEqual(set(proc_status(pid, "Uid")), {str(NOBODY.pw_uid)}, role)
            self.assertEqual(os.path.realpath("/proc/%d/exe" % pid), os.path.realpath(RELAYD))
            if aslr:
                # exec'd, not only forked: a layout of its own.
                self.assertNotEqual(exe_base(pid), exe_base(pids["master"]), role)
            # Nothing of the master's but what the role was handed.
            fds = os.listdir("/proc/%d/fd" % pid)
            targets = [os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in fds]
            self.assertFalse(any("control.sock" in t for t in targets), role)

    def check_reload_takes_effect(self, shipped):
        r, pids = self.start(shipped=shipped)
        self.assertEqual(relay_ok(r.port), (250, b"2.1.5 Ok"))
        self.assertEqual(auth_code(r.port, "alice", USERS["alice"]),
                         (235, b"2.7.0 Authentication successful"))
        mark = len(r.log())
        self.rewrite_conf(r, mynetworks="192.0.2.0/24")
        p = r.ctl("reload")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout, "configuration reloaded\n")
        # Each process says so itself, under its own pid (stderr lines
        # "relayd[PID] role: ...", syslog lines "relayd[PID]: role: ...").
        r.wait_log(r"relayd\[%d\]:? master: reloading configuration" % pids["master"], start=mark)
        for role in ("intake", "queue", "delivery", "master"):
            r.wait_log(r"relayd\[%d\]:? %s: configuration reloaded" % (pids[role], role),
                       start=mark)
        self.assertNotRegex(r.log()[mark:], r"refused|aborted")
        self.assertEqual(relay_ok(r.port), (554, b"5.7.1 Relay access denied"))
        # The root-only key and auth-users were handed over again: STARTTLS
        # and AUTH work with the new configuration.
        self.assertEqual(auth_code(r.port, "alice", USERS["alice"]),
                         (235, b"2.7.0 Authentication successful"))
        self.assertEqual(auth_code(r.port, "alice", "wrong"),
                         (535, b"5.7.8 Authentication credentials invalid"))
        self.assertEqual(r.pids(), pids, "a reload restarts no worker")
        return r

    def test_reload_as_nobody_with_root_only_files_takes_effect(self):
        self.check_reload_takes_effect(shipped=False)

    @unittest.skipUnless(shutil.which("unshare"), "shipped mode needs unshare")
    def test_reload_as_nobody_shipped(self):
        """The same as relayd ships: a daemon logging to syslog."""
        r = self.check_reload_takes_effect(shipped=True)
        self.assertRegex(r.log(), r"(?m)^<\d+>.*relayd\[\d+\]: intake: configuration reloaded$")

    def test_refused_reload_changes_nothing_anywhere(self):
        r, pids = self.start()
        mark = len(r.log())
        self.rewrite_conf(r, mynetworks="192.0.2.0/24")
        with open(self.key, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
        p = r.ctl("reload")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertRegex(p.stderr, r"reload refused: .*TLS.*the running configuration stays")
        self.assertNotRegex(r.log()[mark:], r"(intake|queue|delivery): configuration reloaded")
        # The old mynetworks and the old auth table are in force.
        self.assertEqual(relay_ok(r.port)[0], 250)
        self.assertEqual(auth_code(r.port, "bob", USERS["bob"])[0], 235)

    def test_unchangeable_setting_refuses_the_whole_reload(self):
        r, pids = self.start()
        mark = len(r.log())
        self.rewrite_conf(r, mynetworks="192.0.2.0/24")
        with open(r.conf_path, "a") as f:
            f.write("user daemon\n")
        p = r.ctl("reload")
        self.assertEqual(p.returncode, 1)
        self.assertIn("reload refused: user changed (restart relayd for that)", p.stderr)
        self.assertEqual(relay_ok(r.port)[0], 250)
        self.assertNotRegex(r.log()[mark:], r"configuration reloaded")

    def test_sighup_reload(self):
        r, pids = self.start()
        mark = len(r.log())
        self.rewrite_conf(r, mynetworks="192.0.2.0/24")
        os.kill(pids["master"], 1)
        r.wait_log(r"master: configuration reloaded", start=mark)
        self.assertEqual(relay_ok(r.port)[0], 554)


@unittest.skipUnless(os.geteuid() == 0, "needs root: user nobody, chown")
class LocalSecurityTest(unittest.TestCase):
    def test_state_dir_and_queue_files_are_private(self):
        with Upstream() as up, Relayd(conf_extra="user nobody\n" + up.conf()) as r:
            t = token()
            with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as c:
                c.sendmail("a@client.test", ["b@example.org"], "Subject: %s\r\n\r\nx\r\n" % t)
            up.wait_for(t)
            # Traversable, not listable: submit.sock and maildrop/ are for every local user.
            st = os.stat(r.state_dir)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o711)
            self.assertEqual(st.st_uid, NOBODY.pw_uid)
            files = [f for f in os.listdir(r.state_dir) if f.startswith("queue.db")]
            self.assertIn("queue.db-wal", files)
            for f in files:
                st = os.stat(os.path.join(r.state_dir, f))
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, f)
                self.assertEqual(st.st_uid, NOBODY.pw_uid, f)
            # Another local user cannot read the queue.
            daemon = pwd.getpwnam("daemon")
            p = subprocess.run(["cat", os.path.join(r.state_dir, "queue.db-wal")],
                               capture_output=True, timeout=10,
                               preexec_fn=lambda: (os.setgid(daemon.pw_gid), os.setuid(daemon.pw_uid)))
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(b"Permission denied", p.stderr)

    def refused_start(self, prepare):
        r = Relayd(start=False)
        self.addCleanup(r.cleanup)
        prepare(r.state_dir)
        p = subprocess.run([RELAYD, "-d", "-f", r.conf_path], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(p.returncode, 1, p.stderr)
        return p.stderr

    def test_refuses_state_dir_writable_by_others(self):
        err = self.refused_start(lambda d: os.chmod(d, 0o777))
        self.assertRegex(err, r"state-dir \S+ is writable by others \(mode 0777\); make it 0711; not starting")

    def test_refuses_state_dir_of_another_user(self):
        err = self.refused_start(lambda d: os.chown(d, pwd.getpwnam("daemon").pw_uid, -1))
        self.assertRegex(err, r"state-dir \S+ belongs to uid %d" % pwd.getpwnam("daemon").pw_uid)

    def test_queue_sock_takes_only_workers(self):
        with Relayd(conf_extra="user nobody\n") as r:
            mark = len(r.log())
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(os.path.join(r.state_dir, "queue.sock"))
            # HELLO as intake (MSG_Q_HELLO = 40, u32 role 1): no HELLO_OK, closed.
            # The queue may close before our HELLO is sent or read: the
            # refusal too (the log line below says which peer it refused).
            try:
                s.sendall(struct.pack("=II", 40, 4) + struct.pack("=I", 1))
                got = s.recv(64)
            except (BrokenPipeError, ConnectionResetError):
                got = b""
            self.assertEqual(got, b"", "queue.sock answered a stranger")
            s.close()
            r.wait_log(r"queue.sock: refused pid %d, uid 0: not a relayd worker" % os.getpid(),
                       start=mark)

    def ctl_as(self, r, uid, gid, groups, *args):
        def drop():
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
        return subprocess.run([RELAYCTL, "-f", r.conf_path] + list(args), capture_output=True,
                              text=True, timeout=20, preexec_fn=drop)

    def test_control_sock_read_only_unless_root_or_control_group(self):
        mail = grp.getgrnam("mail")
        with Relayd(conf_extra="user nobody\ncontrol-group mail\n") as r:
            st = os.stat(r.state_dir)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o751)
            self.assertEqual(st.st_gid, mail.gr_gid)
            # control.sock is closed by its own mode, no longer by the directory's.
            st = os.stat(os.path.join(r.state_dir, "control.sock"))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
            self.assertEqual(st.st_gid, mail.gr_gid)
            plain = (NOBODY.pw_uid, NOBODY.pw_gid, [])
            p = self.ctl_as(r, *plain, "status")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("intake", p.stdout)
            self.assertEqual(self.ctl_as(r, *plain, "queue").returncode, 0)
            for cmd in (["flush"], ["delete", "all"], ["reload"]):
                p = self.ctl_as(r, *plain, *cmd)
                self.assertEqual(p.returncode, 1, cmd)
                self.assertIn("permission denied: %s is for root and group mail" % cmd[0], p.stderr)
            member = (NOBODY.pw_uid, NOBODY.pw_gid, [mail.gr_gid])
            p = self.ctl_as(r, *member, "flush")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(r.ctl("flush").returncode, 0)
            r.wait_log(r"control: refused \"flush\" to uid %d" % NOBODY.pw_uid)


if __name__ == "__main__":
    unittest.main()

"""test_sd_notify.py - what the master tells systemd (Type=notify,
etc/relayd.service), read from a fake NOTIFY_SOCKET: a datagram socket the
test binds and passes in the environment, as systemd does.

- READY=1 comes only once every worker is up: by the time it arrives the
  queue has opened queue.db, intake listens, delivery has connected to the
  queue (their start lines are in the log before it), relayctl status shows
  the four processes and the SMTP port greets;
- READY=1 comes once: a worker killed and restarted does not send it again;
- `relayctl reload` is framed by RELOADING=1 then READY=1, and so is a
  refused reload (relayd goes on with the running configuration);
- SIGTERM sends STOPPING=1;
- every message comes from the master's own pid (systemd's default
  NotifyAccess=main drops the others);
- `relayd -F` (the unit's ExecStart) does not fork: the process systemd
  started is the master that says READY=1, and it logs nothing to stderr.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_sd_notify
"""
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import unittest

from harness import RELAYD, Relayd, free_port, wait_until

# Lines each worker logs before it enters its event loop (relayd -d -v).
WORKERS_UP = [
    r"queue: queue: \d+ message\(s\) queued; recovery",
    r"intake: listening on 127\.0\.0\.1:",
    r"delivery: connected to queue\.sock",
]


class NotifySocket:
    """The service manager's end: a datagram socket collecting sd_notify
    messages, each as a dict of its KEY=VALUE lines."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        # As systemd does: the kernel tells the sender's pid.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.pid = None  # the only sender allowed (NotifyAccess=main)

    def next(self, timeout):
        """The next message within timeout seconds, or None."""
        self.sock.settimeout(timeout)
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        pid = None
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", cdata[:12])[0]
        msg = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        if self.pid is not None and pid != self.pid:
            raise AssertionError("%r from pid %r, not the master %d" % (msg, pid, self.pid))
        return msg

    def expect(self, key, timeout=15.0):
        msg = self.next(timeout)
        if msg is None:
            raise AssertionError("no %s=1 within %.0f s" % (key, timeout))
        if msg.get(key) != "1":
            raise AssertionError("expected %s=1, got %r" % (key, msg))
        return msg

    def expect_nothing(self, seconds):
        msg = self.next(seconds)
        if msg is not None:
            raise AssertionError("unexpected message %r" % msg)

    def close(self):
        self.sock.close()


class SdNotifyTest(unittest.TestCase):
    def notify_socket(self):
        tmp = tempfile.mkdtemp(prefix="relayd-notify-")
        self.addCleanup(os.rmdir, tmp)
        n = NotifySocket(tmp)
        self.addCleanup(os.unlink, n.path)
        self.addCleanup(n.close)
        return n

    def start(self, **kw):
        n = self.notify_socket()
        r = Relayd(start=False, **kw)
        self.addCleanup(r.cleanup)
        os.environ["NOTIFY_SOCKET"] = n.path
        try:
            r.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        n.pid = r.master_pid
        return r, n

    def assert_workers_up(self, r):
        """What must hold the moment READY=1 has arrived."""
        log = r.log()
        ready = log.find("master: ready: every worker is up")
        self.assertGreaterEqual(ready, 0, log[-3000:])
        for line in WORKERS_UP:
            m = re.search(line, log)
            self.assertIsNotNone(m, "READY=1 came before %r:\n%s" % (line, log[-3000:]))
            self.assertLess(m.start(), ready, "%r logged after ready" % line)
        st = r.ctl("status")
        self.assertEqual(st.returncode, 0, st.stderr)
        rows = [l.split() for l in st.stdout.splitlines()[1:]]
        self.assertEqual(sorted(row[0] for row in rows),
                         ["delivery", "intake", "master", "queue"], st.stdout)
        for row in rows:
            self.assertTrue(row[1].isdigit(), "not running at READY: %r" % row)
        with socket.create_connection(("127.0.0.1", r.port), timeout=5) as s:
            s.settimeout(5)
            self.assertTrue(s.recv(512).startswith(b"220 "))

    def test_ready_once_reload_and_stop(self):
        r, n = self.start(expect_log=[r"master: delivery worker killed by signal 9; restarting"])
        n.expect("READY")
        self.assert_workers_up(r)

        # A restarted worker does not make relayd ready again.
        before = wait_until(lambda: len(r.pids()) == 4 and r.pids(), what="four processes")
        os.kill(before["delivery"], signal.SIGKILL)
        wait_until(lambda: r.pids().get("delivery") not in (None, before["delivery"]),
                   what="a new delivery worker")
        # It answers (delivery's own counters are in stats), so the probe
        # sent ahead on the same channel was answered too.
        wait_until(lambda: "connections_out" in r.ctl("stats").stdout,
                   what="stats from the new delivery worker")
        r.wait_log(r"started delivery worker")
        n.expect_nothing(1.5)

        p = r.ctl("reload")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        n.expect("RELOADING")
        n.expect("READY")
        n.expect_nothing(0.5)

        # Refused: the running configuration stays, and relayd is ready again.
        with open(r.conf_path, "a") as f:
            f.write("no-such-directive 1\n")
        r.allow_log(r"reload refused")
        p = r.ctl("reload")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        n.expect("RELOADING")
        n.expect("READY")

        # SIGHUP is the same reload.
        with open(r.conf_path, "w") as f:
            f.write(r.conf)
        os.kill(r.master_pid, signal.SIGHUP)
        n.expect("RELOADING")
        n.expect("READY")
        r.wait_log(r"master: configuration reloaded")

        self.assertEqual(r.stop(), 0)
        n.expect("STOPPING", timeout=5)
        n.expect_nothing(0.2)

    def test_F_stays_in_the_foreground(self):
        n = self.notify_socket()
        tmp = tempfile.mkdtemp(prefix="relayd-F-")
        self.addCleanup(os.rmdir, tmp)
        state = os.path.join(tmp, "state")
        conf = os.path.join(tmp, "relayd.conf")
        with open(conf, "w") as f:
            f.write("state-dir %s\nlisten 127.0.0.1:%d smtp\n" % (state, free_port()))
        self.addCleanup(os.unlink, conf)
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", state], timeout=30))
        p = subprocess.Popen([RELAYD, "-F", "-f", conf], env=dict(os.environ, NOTIFY_SOCKET=n.path),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=tmp)

        def stop():
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)
        self.addCleanup(stop)
        n.pid = p.pid
        n.expect("READY")
        self.assertIsNone(p.poll(), "relayd -F exited (forked?)")
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            self.assertEqual(f.read().split(b"\0")[0], b"relayd: master")
        p.send_signal(signal.SIGTERM)
        n.expect("STOPPING", timeout=5)
        out, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0)
        # Its lines went to syslog, not to the journal's stderr stream.
        self.assertEqual((out, err), (b"", b""))

    def test_without_notify_socket_nothing_changes(self):
        # No NOTIFY_SOCKET (relayd -d, a test, a plain daemon): sd_notify is
        # a no-op and no warning is logged.
        with Relayd() as r:
            r.wait_log(r"master: ready: every worker is up")
            self.assertEqual(r.ctl("reload").returncode, 0)
            r.wait_log(r"master: configuration reloaded")
            self.assertNotIn("sd_notify", r.log())


if __name__ == "__main__":
    unittest.main()

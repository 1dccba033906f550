"""The master: four processes with their titles, a killed worker comes back,
SIGTERM leaves nothing behind, SIGHUP/reload, `relayd -n`, relayctl status
and exit statuses."""
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import RELAYD, Relayd, free_port, ps_roles, wait_until


class MasterTest(unittest.TestCase):
    def test_four_processes_with_titles(self):
        with Relayd() as r:
            pids = r.pids()
            self.assertEqual(set(pids), {"master", "intake", "queue", "delivery"})
            self.assertEqual(pids["master"], r.proc.pid)
            for role, pid in pids.items():
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    args = f.read().split(b"\0")[0].decode()
                self.assertEqual(args, "relayd: " + role)

    def test_killed_worker_is_restarted(self):
        with Relayd(expect_log=[r"master: queue worker killed by signal 9; restarting"]) as r:
            before = r.pids()
            os.kill(before["queue"], signal.SIGKILL)
            after = wait_until(lambda: r.pids().get("queue") not in (None, before["queue"]) and r.pids(),
                             what="the queue worker restarted")
            self.assertNotEqual(after["queue"], before["queue"])
            self.assertEqual(after["intake"], before["intake"])
            r.wait_log(r"queue worker killed by signal 9; restarting")
            # The restarted worker answers through the control socket.
            st = r.ctl("status")
            self.assertEqual(st.returncode, 0, st.stderr)
            self.assertRegex(st.stdout, r"queue\s+%d\s" % after["queue"])

    def test_intake_restart_keeps_port(self):
        with Relayd(expect_log=[r"master: intake worker killed by signal 9; restarting"]) as r:
            before = r.pids()
            os.kill(before["intake"], signal.SIGKILL)
            wait_until(lambda: r.pids().get("intake") not in (None, before["intake"]),
                     what="a new intake worker")
            with socket.create_connection(("127.0.0.1", r.port), timeout=10) as s:
                s.settimeout(10)
                self.assertTrue(s.recv(512).startswith(b"220 "))

    def test_sigterm_stops_everything_within_5s(self):
        r = Relayd()
        try:
            pids = r.pids()
            t0 = time.monotonic()
            r.proc.send_signal(signal.SIGTERM)
            rc = r.proc.wait(timeout=10)
            self.assertLess(time.monotonic() - t0, 5.0)
            self.assertEqual(rc, 0)
            left = [p for p in pids.values() if p in ps_roles()]
            self.assertEqual(left, [])
            self.assertFalse(os.path.exists(os.path.join(r.state_dir, "control.sock")))
        finally:
            r.cleanup()

    def test_status_and_exit_codes(self):
        with Relayd() as r:
            st = r.ctl("status")
            self.assertEqual(st.returncode, 0)
            for role in ("master", "intake", "queue", "delivery"):
                self.assertRegex(st.stdout, r"(?m)^%s\s+\d+\s+\d+m\d\ds$" % role)
            self.assertEqual(r.ctl("no-such-command").returncode, 2)
            self.assertEqual(r.ctl("show").returncode, 2)
            self.assertEqual(r.ctl("queue", "--yaml").returncode, 2)
            # No daemon any more: exit 1 with a message.
            r.stop()
            gone = r.ctl("status")
            self.assertEqual(gone.returncode, 1)
            self.assertIn("cannot reach relayd", gone.stderr)

    def test_reload_keeps_running_and_rejects_bad_config(self):
        with Relayd() as r:
            before = r.pids()
            ok = r.ctl("reload")
            self.assertEqual(ok.returncode, 0, ok.stderr)
            r.wait_log(r"intake: configuration reloaded")
            with open(r.conf_path, "a") as f:
                f.write("bogus-directive 1\n")
            bad = r.ctl("reload")
            self.assertEqual(bad.returncode, 1)
            self.assertRegex(bad.stderr, r"reload refused: \S+relayd.conf:\d+: "
                             r"unknown directive .*the running configuration stays")
            r.wait_log(r"relayd.conf:\d+: unknown directive")
            mark = len(r.log())
            os.kill(r.proc.pid, signal.SIGHUP)
            r.wait_log(r"reload refused: .*the running configuration stays", start=mark)
            self.assertEqual(r.pids(), before)

    def test_second_instance_refuses_same_state_dir(self):
        with Relayd() as r:
            other = os.path.join(r.dir, "other.conf")
            with open(other, "w") as f:
                f.write("state-dir %s\nlisten 127.0.0.1:%d\n" % (r.state_dir, free_port()))
            p = subprocess.run([RELAYD, "-d", "-f", other], capture_output=True, text=True,
                               timeout=20)
            self.assertEqual(p.returncode, 1)
            self.assertIn("Address already in use", p.stderr)
            self.assertEqual(r.ctl("status").returncode, 0)


class ConfigCheckTest(unittest.TestCase):
    CASES = [
        ("bogus 1\n", 1, r"unknown directive"),
        ("listen 127.0.0.1:2525\nmax-recipients zero\n", 2, r"max-recipients"),
        ("retry-min 5x\n", 1, r"retry-min"),
        ("listen 127.0.0.1:99999\n", 1, r"listen"),
        ("# fine\nmynetworks 10.0.0.0/33\n", 2, r"mynetworks"),
        ("smarthost\n", 1, r"smarthost"),
    ]

    def test_broken_configs(self):
        with tempfile.TemporaryDirectory() as d:
            for text, line, what in self.CASES:
                with self.subTest(text=text):
                    path = os.path.join(d, "bad.conf")
                    with open(path, "w") as f:
                        f.write(text)
                    p = subprocess.run([RELAYD, "-n", "-f", path], capture_output=True,
                                       text=True, timeout=10)
                    self.assertEqual(p.returncode, 1)
                    self.assertRegex(p.stderr, r"(?m)^%s:%d: .*%s" % (path, line, what))

    def test_every_error_is_reported(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.conf")
            with open(path, "w") as f:
                f.write("bogus\nmax-connections -1\nhostname ok.example\nretry-max soon\n")
            p = subprocess.run([RELAYD, "-n", "-f", path], capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(p.returncode, 1)
            lines = [l for l in p.stderr.splitlines() if l.startswith(path + ":")]
            self.assertEqual([l.split(":")[1] for l in lines], ["1", "2", "4"])

    def test_good_config_and_shipped_config(self):
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        p = subprocess.run([RELAYD, "-n", "-f", os.path.join(top, "etc", "relayd.conf")],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_erroneous_config_does_not_start(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.conf")
            with open(path, "w") as f:
                f.write("state-dir %s\nlisten 127.0.0.1:%d\nmax-message-size huge\n" % (d, free_port()))
            p = subprocess.run([RELAYD, "-d", "-f", path], capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(p.returncode, 1)
            self.assertIn("%s:3:" % path, p.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "control.sock")))


if __name__ == "__main__":
    unittest.main()

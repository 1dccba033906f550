"""The queue when its disk is full (issue 9, point 8): a delivery result
that cannot be committed does not send the same job out again at once, the
error is logged once per interval, and when space returns the mail goes
out and the queue empties. An aborted DATA releases the write transaction
at once."""
import os
import re
import shutil
import smtplib
import sqlite3
import subprocess
import time
import unittest

from harness import Relayd, wait_until
from intake_util import Upstream, token


def fill(path):
    """Fills the file system of path; returns the filler's name."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


class DiskFullCase:
    """The disk-full tests of both modes; SHIPPED says which."""
    SHIPPED = False
    USER = ""

    def relayd(self, up):
        r = Relayd(conf_extra=self.USER + up.conf() + "retry-min 1s\nretry-max 2s\n",
                   start=False, shipped=self.SHIPPED)
        self.addCleanup(shutil.rmtree, r.dir, True)
        self.addCleanup(subprocess.run, ["umount", "-l", r.state_dir], timeout=10)
        self.addCleanup(r.stop)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", r.state_dir],
                       check=True, timeout=10)
        r.start()
        return r

    def test_results_that_cannot_commit_do_not_loop(self):
        up = Upstream()
        r = self.relayd(up)
        pids = r.pids()
        t = token()
        n = 5
        with up:
            # First the MX defers them all, so that they wait in the queue.
            up.rcpt.update({"r%d" % i: "451 4.3.0 try later" for i in range(n)})
            with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as c:
                for i in range(n):
                    c.sendmail("s@client.test", ["r%d@example.org" % i],
                               "Subject: %s %d\r\n\r\nbody\r\n" % (t, i))
            wait_until(lambda: len(re.findall(r"status=deferred", r.log())) >= n, 20, "deferrals")
            filler = fill(r.state_dir)
            mark = len(r.log())
            # Now the MX takes the mail, but the results cannot be written.
            up.rcpt.clear()
            # (stderr lines "relayd[PID] queue: ...", syslog "relayd[PID]: queue: ...")
            r.wait_log(r"relayd\[%d\]:? queue: queue\.db: transaction rolled back \(database or "
                       r"disk is full\); no deliveries for 5s" % pids["queue"], timeout=20, start=mark)
            time.sleep(4)  # a window in which a hot loop would show thousands
            log = r.log()[mark:]
            rollbacks = len(re.findall(r"transaction rolled back", log))
            sent = len(re.findall(r"status=sent", log))
            self.assertLessEqual(rollbacks, 2, "rollback lines in 4 s:\n" + log[-3000:])
            self.assertLessEqual(sent, 2 * n, "deliveries in 4 s")
            self.assertLessEqual(len(up.find(t)), 2 * n)
            # Space returns: every message is delivered and leaves the queue.
            os.unlink(filler)
            subjects = lambda: {re.search(rb"Subject: (\S+ \d+)", m.data).group(1)
                                for m in up.find(t)}
            wait_until(lambda: len(subjects()) == n, 20,
                       lambda: "all delivered:\n" + r.log()[-3000:])
            wait_until(lambda: r.ctl("queue", "--json").stdout.strip() == "[]", 30,
                       lambda: "an empty queue:\n" + r.ctl("queue").stdout)
            # A queue worker that spun would have been restarted or killed:
            # the same processes throughout (stop() fails on any death).
            self.assertEqual(r.pids(), pids)


@unittest.skipUnless(os.geteuid() == 0, "needs root to mount a small tmpfs")
class DiskFullTest(DiskFullCase, unittest.TestCase):
    def test_aborted_data_releases_the_transaction(self):
        up = Upstream()
        r = self.relayd(up)
        db = sqlite3.connect(os.path.join(r.state_dir, "queue.db"), timeout=0.2)
        self.addCleanup(db.close)

        def writable():
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
                return True
            except sqlite3.OperationalError:
                return False
        c = smtplib.SMTP("127.0.0.1", r.port, timeout=10)
        c.ehlo("client.test")
        c.mail("s@client.test")
        c.rcpt("r@example.org")
        c.putcmd("DATA")
        self.assertEqual(c.getreply()[0], 354)
        c.send(b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 400)
        # Content of a message still streaming is committed in the background
        # instead of holding the write lock until an END comes...
        wait_until(lambda: db.execute("SELECT count(*) FROM chunks").fetchone()[0] > 0, 10,
                   lambda: "streamed content committed:\n" + r.log()[-3000:])
        self.assertTrue(writable(), "write lock held while a message streams in")
        # ...nor do the deletions after the client went away mid-DATA.
        c.close()
        r.wait_log(r"disconnect from \[127.0.0.1\]", timeout=10)
        counts = lambda: [db.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
                          for t in ("messages", "recipients", "chunks")]
        wait_until(lambda: counts() == [0, 0, 0], 5,
                   lambda: "the aborted message gone: %r\n%s" % (counts(), r.log()[-3000:]))
        self.assertTrue(writable(), "write lock held after the abort")


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"),
                     "relayd as shipped on a small tmpfs needs root and unshare")
class DiskFullShippedTest(DiskFullCase, unittest.TestCase):
    """relayd as shipped: a daemon with `user nobody`, its lines in syslog."""
    SHIPPED = True
    USER = "user nobody\n"


if __name__ == "__main__":
    unittest.main()

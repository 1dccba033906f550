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

from harness import Relayd
from intake_util import Upstream, token


def wait_for(pred, timeout=20.0, what="condition", log=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s%s" % (what, "\n" + log()[-3000:] if log else ""))


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


@unittest.skipUnless(os.geteuid() == 0, "needs root to mount a small tmpfs")
class DiskFullTest(unittest.TestCase):
    def relayd(self, up):
        r = Relayd(conf_extra=up.conf() + "retry-min 1s\nretry-max 2s\n", start=False)
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
        t = token()
        n = 5
        with up:
            # First the MX defers them all, so that they wait in the queue.
            up.rcpt.update({"r%d" % i: "451 4.3.0 try later" for i in range(n)})
            with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as c:
                for i in range(n):
                    c.sendmail("s@client.test", ["r%d@example.org" % i],
                               "Subject: %s %d\r\n\r\nbody\r\n" % (t, i))
            wait_for(lambda: len(re.findall(r"status=deferred", r.log())) >= n, what="deferrals")
            filler = fill(r.state_dir)
            mark = len(r.log())
            # Now the MX takes the mail, but the results cannot be written.
            up.rcpt.clear()
            r.wait_log(r"transaction rolled back \(database or disk is full\); no deliveries for 5s",
                       timeout=20, start=mark)
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
            wait_for(lambda: len(subjects()) == n, what="all delivered", log=r.log)
            wait_for(lambda: r.ctl("queue", "--json").stdout.strip() == "[]", timeout=30,
                     what="an empty queue", log=lambda: r.ctl("queue").stdout)

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
        wait_for(lambda: db.execute("SELECT count(*) FROM chunks").fetchone()[0] > 0,
                 timeout=10, what="streamed content committed", log=r.log)
        self.assertTrue(writable(), "write lock held while a message streams in")
        # ...nor do the deletions after the client went away mid-DATA.
        c.close()
        r.wait_log(r"disconnect from \[127.0.0.1\]", timeout=10)
        counts = lambda: [db.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
                          for t in ("messages", "recipients", "chunks")]
        wait_for(lambda: counts() == [0, 0, 0], timeout=5, what="the aborted message gone",
                 log=lambda: "%r\n%s" % (counts(), r.log()))
        self.assertTrue(writable(), "write lock held after the abort")


if __name__ == "__main__":
    unittest.main()

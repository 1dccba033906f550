"""test_queue_summary.py - `relayctl queue --summary [--json]` (issue 14,
point 5): the queue's shape by destination domain and age bucket, as
Postfix's qshape shows it. Mail held for a dead smarthost first shows in
the "just arrived" column; then the stored arrival times of three messages
are moved back while relayd is stopped (what a queue that survived a long
outage looks like to a restarted relayd) and each lands in its bucket.
More than 50 domains fold the quietest into one "other" row.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_queue_summary
"""
import json
import os
import smtplib
import sqlite3
import unittest

from harness import Relayd, free_port, wait_until

COLS = ["5m", "10m", "20m", "40m", "80m", "160m", "320m", "640m", "1280m", "1280m+"]


def send(r, rcpts, subject):
    with smtplib.SMTP("127.0.0.1", r.port, timeout=20) as s:
        s.sendmail("s@snd.test", rcpts, "Subject: %s\r\n\r\nhi\r\n" % subject)


def ages(**cells):
    """The ten bucket counts, zero but for the given ones (key "m1280p": 1280m+)."""
    return {c: cells.get("m" + c.replace("+", "p"), 0) for c in COLS}


class QueueSummary(unittest.TestCase):
    def setUp(self):
        dead = free_port()  # nothing listens there
        self.r = Relayd(conf_extra="mynetworks 127.0.0.1/32\nsmarthost [127.0.0.1]:%d\n"
                        "retry-min 1h\nretry-max 1h\noutbound-tls none\n" % dead)
        self.addCleanup(self.r.cleanup)

    def summary(self):
        p = self.r.ctl("queue", "--summary", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def text_rows(self):
        p = self.r.ctl("queue", "--summary")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["T"] + COLS, p.stdout)
        rows = []
        for line in lines[1:]:
            cells = line.rsplit(None, 11)
            self.assertEqual(len(cells), 12, line)
            rows.append((cells[0], [int(x) for x in cells[1:]]))
        return rows

    def deferred(self, n):
        wait_until(lambda: self.r.log().count("status=deferred") >= n, 20,
                   lambda: "%d deferrals in the log:\n%s" % (n, self.r.log()[-3000:]))

    def test_shape_by_domain_and_age(self):
        r = self.r
        self.assertEqual(self.summary(), {"total": {"count": 0, "ages": ages()}, "domains": []})
        send(r, ["a1@busy.test", "a2@busy.test", "a3@busy.test", "a@mid.test"], "A")
        send(r, ["b1@mid.test", "b2@mid.test"], "B")
        send(r, ["c@quiet.test"], "C")
        self.deferred(7)
        # Just arrived: all in the first column; busiest first, ties by name.
        got = self.summary()
        self.assertEqual(got["total"], {"count": 7, "ages": ages(m5m=7)})
        self.assertEqual([(d["domain"], d["count"], d["ages"]) for d in got["domains"]],
                         [("busy.test", 3, ages(m5m=3)), ("mid.test", 3, ages(m5m=3)),
                          ("quiet.test", 1, ages(m5m=1))])
        self.assertNotIn("other", got)

        # The same queue after an outage: A 7 minutes old, B 100 minutes,
        # C two days.
        r.stop()
        db = sqlite3.connect(os.path.join(r.state_dir, "queue.db"), timeout=10)
        try:
            for subject, back in (("A", 7 * 60), ("B", 100 * 60), ("C", 2 * 86400)):
                qid = [q for (q,) in db.execute("SELECT qid FROM messages")
                       if subject_of(db, q) == subject]
                self.assertEqual(len(qid), 1, subject)
                db.execute("UPDATE messages SET arrival = arrival - ? WHERE qid = ?",
                           (back, qid[0]))
            db.commit()
        finally:
            db.close()
        r.start()
        # 55 more domains, one recipient each, just arrived.
        send(r, ["x@d%02d.test" % i for i in range(55)], "D")
        got = self.summary()
        self.assertEqual(got["total"], {"count": 62,
                                        "ages": ages(m5m=55, m10m=4, m160m=2, m1280mp=1)})
        doms = [(d["domain"], d["count"], d["ages"]) for d in got["domains"]]
        self.assertEqual(len(doms), 50)
        self.assertEqual(doms[0], ("busy.test", 3, ages(m10m=3)))
        self.assertEqual(doms[1], ("mid.test", 3, ages(m10m=1, m160m=2)))
        # Then the single ones by name: d00 .. d47; d48 .. d54 and quiet.test fold.
        self.assertEqual(doms[2:], [("d%02d.test" % i, 1, ages(m5m=1)) for i in range(48)])
        self.assertEqual(got["other"], {"domains": 8, "count": 8, "ages": ages(m5m=7, m1280mp=1)})

        # The text form: the same figures, TOTAL first, the folded row last.
        rows = self.text_rows()
        self.assertEqual(rows[0], ("TOTAL", [62] + list(got["total"]["ages"].values())))
        self.assertEqual(rows[1], ("busy.test", [3] + list(ages(m10m=3).values())))
        self.assertEqual(rows[-1], ("(8 other domains)",
                                    [8] + list(ages(m5m=7, m1280mp=1).values())))
        self.assertEqual(len(rows), 52)

    def test_usage(self):
        for args in (["queue", "--summary", "--summary"], ["queue", "--sum"],
                     ["queue", "--json", "--json"]):
            p = self.r.ctl(*args)
            self.assertEqual(p.returncode, 2, args)
        p = self.r.ctl("queue", "--json", "--summary")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["total"]["count"], 0)


def subject_of(db, qid):
    data = b"".join(d for (d,) in db.execute(
        "SELECT data FROM chunks WHERE qid = ? ORDER BY seq", (qid,)))
    for line in data.split(b"\r\n"):
        if line.startswith(b"Subject: "):
            return line[9:].decode()
    return None


if __name__ == "__main__":
    unittest.main()

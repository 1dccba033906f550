"""test_queue_worker.py - the queue worker alone (relayd -X queue) driven
over STATE_DIR/queue.sock as intake and delivery would, and through
relayctl: commits, group commit, broken streams, jobs and results,
bounces, expiry, delay notices, every relayctl command.

The first half is QueuePeer, which speaks the queue worker's protocol
(common/ipc_types.h) from Python; other test files import it.

A frame is a header (u32 type, u32 payload length, host order = little
endian here) and a payload of fields: u32/u64/i64 raw, str/bytes as a u32
length and the bytes.

    p = QueuePeer(state_dir, ROLE_INTAKE)
    p.submit(sid, qid, "s@example.com", ["a@x.example"], b"Subject: x\\r\\n\\r\\nhi\\r\\n")
    typ, f = p.recv()          # f: a Fields reader over the payload
"""
import email
import email.policy
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import threading
import time
import unittest

from harness import Relayd, wait_until

MSG_Q_HELLO, MSG_Q_HELLO_OK = 40, 41
MSG_Q_BEGIN, MSG_Q_RCPT, MSG_Q_CONTENT, MSG_Q_END, MSG_Q_ABORT, \
    MSG_Q_COMMITTED, MSG_Q_FAILED = range(50, 57)
MSG_D_READY, MSG_D_JOB, MSG_D_CHUNK_REQ, MSG_D_CHUNK, MSG_D_RESULT, \
    MSG_D_DONE, MSG_D_JOB_FAIL, MSG_D_SUSPENDED, MSG_D_FLUSH = range(70, 79)
ROLE_INTAKE, ROLE_DELIVERY = 1, 2
DLV_SENT, DLV_DEFERRED, DLV_BOUNCED = 1, 2, 3
BODY_8BITMIME = 1
CHUNK = 64 * 1024


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def i64(v):
    return struct.pack("<q", v)


def sbytes(b):
    if isinstance(b, str):
        b = b.encode()
    return u32(len(b)) + b


class Fields:
    """Reads payload fields in order."""

    def __init__(self, data):
        self.data, self.off = data, 0

    def _take(self, n):
        if self.off + n > len(self.data):
            raise ValueError("short payload")
        b = self.data[self.off:self.off + n]
        self.off += n
        return b

    def u32(self):
        return struct.unpack("<I", self._take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self._take(8))[0]

    def i64(self):
        return struct.unpack("<q", self._take(8))[0]

    def bytes(self):
        return self._take(self.u32())

    def str(self):
        return self.bytes().decode()

    def done(self):
        return self.off == len(self.data)


class QueuePeer:
    def __init__(self, state_dir, role, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(os.path.join(state_dir, "queue.sock"))
            self.send(MSG_Q_HELLO, u32(role))
            # The queue worker's answer (role echoed, its pid): it serves us now.
            f = self.expect(MSG_Q_HELLO_OK)
            if f.u32() != role:
                raise AssertionError("HELLO_OK for another role")
            self.queue_pid = f.u32()
        except BaseException:
            self.sock.close()
            raise

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, typ, payload=b""):
        self.sock.sendall(struct.pack("<II", typ, len(payload)) + payload)

    def _read(self, n):
        out = b""
        while len(out) < n:
            b = self.sock.recv(n - len(out))
            if not b:
                raise EOFError("queue closed the connection")
            out += b
        return out

    def recv(self):
        typ, n = struct.unpack("<II", self._read(8))
        return typ, Fields(self._read(n))

    def expect(self, want):
        typ, f = self.recv()
        if typ != want:
            raise AssertionError("got frame %d, wanted %d" % (typ, want))
        return f

    # intake
    def begin(self, sid, qid, sender, client="192.0.2.1", helo="client.example",
              auth="", flags=BODY_8BITMIME, arrival=None, arrival_usec=0, ret=0, envid=""):
        arrival = int(time.time()) if arrival is None else arrival
        self.send(MSG_Q_BEGIN, u64(sid) + sbytes(qid) + sbytes(sender) + sbytes(client) +
                  sbytes(helo) + sbytes(auth) + u32(flags) + i64(arrival) + u32(arrival_usec) +
                  u32(ret) + sbytes(envid))

    def rcpt(self, sid, addr, notify=0, orcpt=""):
        self.send(MSG_Q_RCPT, u64(sid) + sbytes(addr) + u32(notify) + sbytes(orcpt))

    def content(self, sid, data):
        for off in range(0, len(data), CHUNK):
            self.send(MSG_Q_CONTENT, u64(sid) + sbytes(data[off:off + CHUNK]))

    def end(self, sid, size):
        self.send(MSG_Q_END, u64(sid) + u64(size))

    def abort(self, sid):
        self.send(MSG_Q_ABORT, u64(sid))

    def submit(self, sid, qid, sender, rcpts, body, end=True, **kw):
        """BEGIN, RCPTs, CONTENT and (end=True) END; no reply is read."""
        self.begin(sid, qid, sender, **kw)
        for r in rcpts:
            self.rcpt(sid, r)
        self.content(sid, body)
        if end:
            self.end(sid, len(body))

    def reply(self):
        """(kind, sid, rest): ("committed", sid, qid) or ("failed", sid, (code, enh, text))."""
        typ, f = self.recv()
        if typ == MSG_Q_COMMITTED:
            return "committed", f.u64(), f.str()
        if typ == MSG_Q_FAILED:
            return "failed", f.u64(), (f.u32(), f.str(), f.str())
        raise AssertionError("unexpected frame %d" % typ)

    # delivery
    def ready(self, n):
        self.send(MSG_D_READY, u32(n))

    def job(self):
        f = self.expect(MSG_D_JOB)
        j = {"jobid": f.u64(), "qid": f.str(), "sender": f.str(), "domain": f.str(),
             "size": f.u64(), "flags": f.u32(), "arrival": f.i64(),
             "arrival_usec": f.u32(), "ret": f.u32(), "envid": f.str()}
        n = f.u32()
        j["rcpts"] = []
        j["dsn"] = []
        for _ in range(n):
            j["rcpts"].append((f.u64(), f.str()))
            j["dsn"].append((f.u32(), f.str()))
        assert f.done()
        return j

    def flushed(self, domain):
        """relayctl flush told delivery to forget domain's next hop ("": all)."""
        f = self.expect(MSG_D_FLUSH)
        got = f.str()
        if got != domain or not f.done():
            raise AssertionError("MSG_D_FLUSH for %r, wanted %r" % (got, domain))

    def fetch(self, jobid):
        """The whole content of a job, pulled chunk by chunk."""
        out, seq = b"", 0
        while True:
            self.send(MSG_D_CHUNK_REQ, u64(jobid) + u32(seq))
            f = self.expect(MSG_D_CHUNK)
            assert f.u64() == jobid and f.u32() == seq
            last = f.u32()
            out += f.bytes()
            if last:
                return out
            seq += 1

    def result(self, jobid, rcptid, dclass, code=250, enh="2.0.0", text="250 ok",
               relay="mx.example[192.0.2.5]:25", reply=None, flags=0):
        reply = text if reply is None else reply
        self.send(MSG_D_RESULT, u64(jobid) + u64(rcptid) + u32(dclass) + u32(code) +
                  sbytes(enh) + sbytes(text) + sbytes(relay) + sbytes(reply) + u32(flags))

    def done(self, jobid):
        self.send(MSG_D_DONE, u64(jobid))


# ---------------------------------------------------------------- tests

BODY = (b"From: Sender <s@example.com>\r\nTo: a@x.example\r\nSubject: queue test\r\n"
        b"Message-ID: <t1@example.com>\r\n\r\nhello\r\n.leading dot\r\n")


def qid_for(n, prefix="A"):
    return "%s%015X" % (prefix, n)


def queue_json(r):
    cp = r.ctl("queue", "--json")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    return {m["qid"]: m for m in json.loads(cp.stdout)}


def db_rows(state_dir, sql):
    """The rows of sql in queue.db, read as another reader (committed data only)."""
    db = sqlite3.connect(os.path.join(state_dir, "queue.db"), timeout=10)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def db_messages(state_dir):
    """The qids of complete messages."""
    return {q for q, in db_rows(state_dir, "SELECT qid FROM messages WHERE complete = 1")}


def db_qids(state_dir):
    """{table: the qids of its rows} for every table of queue.db, complete or not."""
    return {t: {q for q, in db_rows(state_dir, "SELECT qid FROM %s" % t)}
            for t in ("messages", "recipients", "chunks")}


def integrity(state_dir):
    return db_rows(state_dir, "PRAGMA integrity_check")[0][0]


class QueueWorkerTest(unittest.TestCase):
    conf = ""

    def setUp(self):
        self.r = Relayd(conf_extra=self.conf, roles="queue")
        self.addCleanup(self.r.cleanup)
        wait_until(lambda: os.path.exists(os.path.join(self.r.state_dir, "queue.sock")),
                 what="queue.sock")

    def peer(self, role):
        p = QueuePeer(self.r.state_dir, role)
        self.addCleanup(p.close)
        return p

    def commit(self, p, sid, qid, rcpts=("a@x.example",), body=BODY, sender="s@example.com",
               **kw):
        p.submit(sid, qid, sender, list(rcpts), body, **kw)
        self.assertEqual(p.reply(), ("committed", sid, qid))


class TestIntake(QueueWorkerTest):
    def test_commit_is_durable_and_logged(self):
        p = self.peer(ROLE_INTAKE)
        self.commit(p, 1, qid_for(1), rcpts=("a@x.example", "b@y.example"))
        # Committed means visible to another reader of queue.db at once.
        self.assertIn(qid_for(1), db_messages(self.r.state_dir))
        self.r.wait_log(r"%s: from=<s@example.com>, size=%d, nrcpt=2, client=\[192\.0\.2\.1\]"
                        % (qid_for(1), len(BODY)))
        m = queue_json(self.r)[qid_for(1)]
        self.assertEqual(m["size"], len(BODY))
        self.assertEqual(m["sender"], "s@example.com")
        self.assertEqual([(x["address"], x["state"], x["attempts"]) for x in m["recipients"]],
                         [("a@x.example", "queued", 0), ("b@y.example", "queued", 0)])

    def test_group_commit_of_pipelined_messages(self):
        p = self.peer(ROLE_INTAKE)
        n = 200
        for i in range(n):
            p.submit(i + 1, qid_for(i + 1), "s@example.com", ["a@x.example"], BODY)
        replies = [p.reply() for _ in range(n)]
        self.assertEqual(sorted(r[1] for r in replies), list(range(1, n + 1)))
        self.assertTrue(all(r[0] == "committed" for r in replies))
        self.assertEqual(len(db_messages(self.r.state_dir)), n)

    def test_large_message_streams_in_chunks(self):
        body = b"Subject: big\r\n\r\n" + b"".join(b"line %07d of a big message\r\n" % i
                                                  for i in range(200000))
        p = self.peer(ROLE_INTAKE)
        self.commit(p, 1, qid_for(1), body=body)
        d = self.peer(ROLE_DELIVERY)
        d.ready(1)
        j = d.job()
        self.assertEqual(j["size"], len(body))
        self.assertEqual(d.fetch(j["jobid"]), body)

    def test_abort_and_broken_stream_leave_nothing(self):
        p = self.peer(ROLE_INTAKE)
        p.submit(1, qid_for(1), "s@example.com", ["a@x.example"], BODY, end=False)
        p.abort(1)
        q = QueuePeer(self.r.state_dir, ROLE_INTAKE)
        q.submit(2, qid_for(2), "s@example.com", ["a@x.example"], BODY * 100, end=False)
        q.close()
        self.commit(p, 3, qid_for(3))
        # Every table holds the committed message alone once the queue has
        # seen the abort and the broken stream.
        only3 = {"messages": {qid_for(3)}, "recipients": {qid_for(3)}, "chunks": {qid_for(3)}}
        wait_until(lambda: db_qids(self.r.state_dir) == only3, what="only %s in queue.db" % qid_for(3))
        self.assertEqual(db_qids(self.r.state_dir), only3)
        self.assertEqual(set(queue_json(self.r)), {qid_for(3)})
        self.assertEqual(self.r.queue_rows()["incomplete"], 0)

    def test_duplicate_qid_fails_451(self):
        p = self.peer(ROLE_INTAKE)
        self.commit(p, 1, qid_for(1))
        p.submit(2, qid_for(1), "other@example.com", ["z@x.example"], BODY)
        kind, sid, (code, enh, text) = p.reply()
        self.assertEqual((kind, sid, code, enh), ("failed", 2, 451, "4.3.0"))
        self.assertEqual(queue_json(self.r)[qid_for(1)]["sender"], "s@example.com")


class TestCrash(QueueWorkerTest):
    def stream_until_killed(self, rnd, commits):
        """Streams transactions from one thread and reads replies in another
        while the queue worker gets SIGKILL once `commits` are confirmed.
        Returns (confirmed qids, qids never ended). The reader hands what
        it found to this thread, which asserts."""
        p = QueuePeer(self.r.state_dir, ROLE_INTAKE)
        confirmed, unended, wrong = set(), set(), []

        def writer():
            sid = 0
            try:
                while True:
                    sid += 1
                    qid = qid_for(sid, "%X" % rnd)
                    # Every seventh transaction is left open, interleaved with the rest.
                    end = sid % 7 != 0
                    if not end:
                        unended.add(qid)
                    p.submit(sid, qid, "s@example.com", ["a@x.example"], BODY * (sid % 5 + 1),
                             end=end)
            except (OSError, EOFError):
                pass

        def reader():
            try:
                while True:
                    kind, _, q = p.reply()
                    if kind == "committed":
                        confirmed.add(q)
                    else:
                        wrong.append((kind, q))
            except (OSError, EOFError):
                pass

        threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
        pid = self.r.pids()["queue"]
        for t in threads:
            t.start()
        # the writer is still streaming when the kill comes
        wait_until(lambda: len(confirmed) >= commits, 30, "%d commits" % commits)
        os.kill(pid, signal.SIGKILL)
        for t in threads:
            t.join(timeout=20)
            self.assertFalse(t.is_alive())
        p.close()
        self.assertEqual(wrong, [], "replies other than COMMITTED")
        wait_until(lambda: self.r.pids().get("queue") not in (None, pid), what="restart")
        return confirmed, unended

    def test_sigkill_during_commits_loses_nothing_confirmed(self):
        self.r.allow_log(r"master: queue worker killed by signal 9; restarting")
        total = 0
        for rnd, commits in enumerate((20, 60, 150), 1):
            confirmed, unended = self.stream_until_killed(rnd, commits)
            self.assertGreaterEqual(len(confirmed), commits)
            total += len(confirmed)
            # The new worker answers (after its recovery), and what it lists is on disk.
            listed = set(wait_until(lambda: self.r.ctl("queue", "--json").returncode == 0 and
                                  queue_json(self.r), what="relayctl queue"))
            on_disk = db_messages(self.r.state_dir)
            self.assertLessEqual(listed, on_disk)
            self.assertEqual(confirmed - on_disk, set(), "confirmed messages lost")
            self.assertEqual(unended & on_disk, set(), "unended messages visible")
            self.assertEqual(integrity(self.r.state_dir), "ok")
            # recovery left no incomplete message and no recipient or chunk
            # of one, in any table
            rows = self.r.queue_rows()
            self.assertEqual((rows["incomplete"], rows["orphan recipients"], rows["orphan chunks"]),
                             (0, 0, 0), rows)
            self.assertEqual(db_qids(self.r.state_dir)["messages"], on_disk)
        self.assertEqual(len(re.findall(r"recovery discarded \d+ incomplete", self.r.log())), 4)
        # And it serves again.
        p2 = self.peer(ROLE_INTAKE)
        self.commit(p2, 1, qid_for(1, "B"))


class TestDelivery(QueueWorkerTest):
    def test_jobs_grouped_by_domain_against_credit(self):
        p = self.peer(ROLE_INTAKE)
        self.commit(p, 1, qid_for(1), rcpts=("a@x.example", "b@y.example", "c@x.example"))
        d = self.peer(ROLE_DELIVERY)
        d.ready(1)
        j1 = d.job()
        self.assertEqual((j1["qid"], j1["domain"], [a for _, a in j1["rcpts"]]),
                         (qid_for(1), "x.example", ["a@x.example", "c@x.example"]))
        self.assertEqual(j1["sender"], "s@example.com")
        self.assertEqual(j1["flags"], BODY_8BITMIME)
        # No credit left: nothing more arrives.
        d.sock.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            d.recv()
        d.sock.settimeout(10)
        d.ready(1)
        j2 = d.job()
        self.assertEqual(j2["domain"], "y.example")
        self.assertEqual(d.fetch(j1["jobid"]), BODY)
        for rid, _ in j1["rcpts"] + j2["rcpts"]:
            d.result(j1["jobid"] if (rid, _) in j1["rcpts"] else j2["jobid"], rid, DLV_SENT)
        d.done(j1["jobid"])
        d.done(j2["jobid"])
        self.r.wait_log(r"%s: removed" % qid_for(1))
        self.assertEqual(queue_json(self.r), {})
        stats = self.r.ctl("stats").stdout
        self.assertRegex(stats, r"delivered\s+3")

    def test_delivery_gone_requeues_in_flight(self):
        p = self.peer(ROLE_INTAKE)
        self.commit(p, 1, qid_for(1))
        d = QueuePeer(self.r.state_dir, ROLE_DELIVERY)
        d.ready(5)
        j = d.job()
        self.assertEqual(queue_json(self.r)[qid_for(1)]["recipients"][0]["state"], "inflight")
        d.close()
        d2 = self.peer(ROLE_DELIVERY)
        d2.ready(5)
        j2 = d2.job()
        self.assertEqual(j2["rcpts"], j["rcpts"])

    def test_deferred_backs_off(self):
        p = self.peer(ROLE_INTAKE)
        self.commit(p, 1, qid_for(1))
        d = self.peer(ROLE_DELIVERY)
        d.ready(5)
        j = d.job()
        t0 = time.time()
        d.result(j["jobid"], j["rcpts"][0][0], DLV_DEFERRED, 451, "4.4.1", "connection refused")
        d.done(j["jobid"])
        rc = wait_until(lambda: queue_json(self.r)[qid_for(1)]["recipients"][0]["state"] ==
                      "deferred" and queue_json(self.r)[qid_for(1)]["recipients"][0])
        self.assertEqual(rc["attempts"], 1)
        self.assertEqual(rc["last_error"], "connection refused")
        self.assertEqual(rc["last_enh"], "4.4.1")
        # retry-min is 5m by default, less up to 5% of jitter.
        self.assertGreaterEqual(rc["next_attempt"] - t0, 285 - 1)
        self.assertLessEqual(rc["next_attempt"] - t0, 300 + 2)
        # flush makes it due now; delivery has credit left, so it comes at once.
        cp = self.r.ctl("flush")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        d.flushed("")
        j2 = d.job()
        self.assertEqual(j2["rcpts"], j["rcpts"])
        self.r.wait_log(r"flush by relayctl")


class TestRetryTimer(QueueWorkerTest):
    # Jitter is 5% of the delay, rounded down: none for delays under 20 s.
    conf = "retry-min 1s\nretry-max 3s\n"

    def test_wakes_at_next_attempt_with_doubling_capped(self):
        p = self.peer(ROLE_INTAKE)
        self.commit(p, 1, qid_for(1))
        d = self.peer(ROLE_DELIVERY)
        d.ready(10)
        j = d.job()
        # 1 s, doubled to 2 s, doubled to 4 s but capped at retry-max 3 s, 3 s.
        for attempt, want in enumerate((1, 2, 3, 3), 1):
            t, before = time.monotonic(), int(time.time())
            d.result(j["jobid"], j["rcpts"][0][0], DLV_DEFERRED, 451, "4.4.1", "refused")
            d.done(j["jobid"])
            # No flush, no READY: the retry timer alone hands it out again.
            j = d.job()
            gap, now = time.monotonic() - t, int(time.time())
            # The timer is armed for next_attempt - now in whole seconds;
            # it never fires early, and on a loaded machine may fire late.
            self.assertGreater(gap, want - 0.5, "attempt %d: gap %.2f s" % (attempt, gap))
            self.assertLess(gap, want + 2.0, "attempt %d: gap %.2f s" % (attempt, gap))
            rc = queue_json(self.r)[qid_for(1)]["recipients"][0]
            self.assertEqual(rc["attempts"], attempt)
            self.assertGreaterEqual(rc["next_attempt"], before + want, "attempt %d" % attempt)
            self.assertLessEqual(rc["next_attempt"], now, "attempt %d" % attempt)


class TestBounces(QueueWorkerTest):
    conf = "delay-warning 1m\n"

    def bounce_of(self, d, orig_qid):
        """Takes the next job, which must be a report to s@example.com; returns it parsed."""
        d.ready(1)
        j = d.job()
        self.assertNotEqual(j["qid"], orig_qid)
        self.assertEqual(j["sender"], "")
        self.assertEqual([a for _, a in j["rcpts"]], ["s@example.com"])
        raw = d.fetch(j["jobid"])
        self.assertNotIn(b"\n", raw.replace(b"\r\n", b""))
        return email.message_from_bytes(raw, policy=email.policy.default)

    def check_report(self, msg, action):
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertEqual(msg["From"], "Mail Delivery System <MAILER-DAEMON@relayd.test>")
        self.assertEqual(msg["To"].addresses[0].addr_spec, "s@example.com")
        parts = msg.get_payload()
        # A failure returns the (small) message whole; a delay notice its headers.
        returned = "message/rfc822" if action == "failed" else "text/rfc822-headers"
        self.assertEqual([x.get_content_type() for x in parts],
                         ["text/plain", "message/delivery-status", returned])
        status = parts[1].get_payload()
        self.assertEqual(status[0]["Reporting-MTA"], "dns; relayd.test")
        self.assertIsNotNone(status[0]["Arrival-Date"])
        self.assertEqual({s["Action"] for s in status[1:]}, {action})
        if returned == "message/rfc822":
            self.assertEqual(parts[2].get_payload()[0]["Subject"], "queue test")
        else:
            self.assertIn("Subject: queue test", parts[2].get_payload())
        return status[1:]

    def test_one_bounce_for_all_failed_recipients(self):
        p = self.peer(ROLE_INTAKE)
        self.commit(p, 1, qid_for(1), rcpts=("a@x.example", "b@x.example", "c@x.example"))
        d = self.peer(ROLE_DELIVERY)
        d.ready(1)
        j = d.job()
        (ra, _), (rb, _), (rc, _) = j["rcpts"]
        d.result(j["jobid"], ra, DLV_BOUNCED, 550, "5.1.1", "550 5.1.1 no such user",
                 "mx.x.example[192.0.2.9]:25")
        d.result(j["jobid"], rb, DLV_SENT)
        d.result(j["jobid"], rc, DLV_BOUNCED, 554, "5.7.1", "554 5.7.1 rejected",
                 "mx.x.example[192.0.2.9]:25")
        d.done(j["jobid"])
        status = self.check_report(self.bounce_of(d, qid_for(1)), "failed")
        self.assertEqual([(s["Final-Recipient"], s["Status"], s["Remote-MTA"],
                           s["Diagnostic-Code"]) for s in status],
                         [("rfc822; a@x.example", "5.1.1", "dns; mx.x.example",
                           "smtp; 550 5.1.1 no such user"),
                          ("rfc822; c@x.example", "5.7.1", "dns; mx.x.example",
                           "smtp; 554 5.7.1 rejected")])
        self.r.wait_log(r"%s: sender non-delivery notification: [0-9A-F]{16}" % qid_for(1))
        self.assertNotIn(qid_for(1), queue_json(self.r))

    def test_no_bounce_for_null_sender(self):
        p = self.peer(ROLE_INTAKE)
        self.commit(p, 1, qid_for(1), sender="")
        d = self.peer(ROLE_DELIVERY)
        d.ready(1)
        j = d.job()
        d.result(j["jobid"], j["rcpts"][0][0], DLV_BOUNCED, 550, "5.1.1", "550 no")
        d.done(j["jobid"])
        self.r.wait_log(r"%s: removed" % qid_for(1))
        self.assertEqual(queue_json(self.r), {})

    def test_expiry_bounces_with_log_line(self):
        p = self.peer(ROLE_INTAKE)
        # Arrived six days ago: past the default queue-lifetime of 5d.
        self.commit(p, 1, qid_for(1), arrival=int(time.time()) - 6 * 86400)
        d = self.peer(ROLE_DELIVERY)
        d.ready(1)
        j = d.job()
        d.result(j["jobid"], j["rcpts"][0][0], DLV_DEFERRED, 421, "4.4.2", "421 too busy")
        d.done(j["jobid"])
        self.r.wait_log(r"%s: to=<a@x\.example>, relay=none, delay=\d+, dsn=4\.4\.2, "
                        r"status=bounced \(" % qid_for(1))
        status = self.check_report(self.bounce_of(d, qid_for(1)), "failed")
        self.assertEqual(status[0]["Status"], "4.4.2")

    def test_one_delay_notice(self):
        p = self.peer(ROLE_INTAKE)
        # Two hours old: past delay-warning (1m), well within queue-lifetime.
        self.commit(p, 1, qid_for(1), arrival=int(time.time()) - 7200)
        d = self.peer(ROLE_DELIVERY)
        d.ready(1)
        j = d.job()
        d.result(j["jobid"], j["rcpts"][0][0], DLV_DEFERRED, 421, "4.4.2", "421 too busy")
        d.done(j["jobid"])
        status = self.check_report(self.bounce_of(d, qid_for(1)), "delayed")
        self.assertEqual(status[0]["Final-Recipient"], "rfc822; a@x.example")
        # A second failure sends no second notice.
        self.assertEqual(self.r.ctl("flush", qid_for(1)).returncode, 0)
        d.flushed("x.example")
        d.ready(1)
        j = d.job()
        self.assertEqual(j["qid"], qid_for(1))
        d.result(j["jobid"], j["rcpts"][0][0], DLV_DEFERRED, 421, "4.4.2", "421 too busy")
        d.done(j["jobid"])
        # the second failure is recorded (a notice would be made in the same step)
        wait_until(lambda: queue_json(self.r)[qid_for(1)]["recipients"][0]["attempts"] == 2,
                 what="the second attempt recorded")
        self.assertEqual(self.r.log().count("sender delay notification"), 1)


class TestRelayctl(QueueWorkerTest):
    def test_every_command_and_its_status(self):
        p = self.peer(ROLE_INTAKE)
        self.commit(p, 1, qid_for(1), rcpts=("a@x.example",))
        self.commit(p, 2, qid_for(2), sender='we"ird\\name@example.com')
        ctl = self.r.ctl

        cp = ctl("queue")
        self.assertEqual(cp.returncode, 0)
        self.assertIn(qid_for(1), cp.stdout)
        self.assertIn("<a@x.example> queued attempts=0", cp.stdout)
        # JSON with escaping survives a real parser.
        self.assertEqual(queue_json(self.r)[qid_for(2)]["sender"], 'we"ird\\name@example.com')

        cp = ctl("show", qid_for(1))
        self.assertEqual(cp.returncode, 0)
        self.assertIn("Subject: queue test", cp.stdout)
        self.assertIn("sender: <s@example.com>", cp.stdout)
        self.assertIn("client: [192.0.2.1]", cp.stdout)

        self.assertEqual(ctl("hold", qid_for(1)).returncode, 0)
        self.r.wait_log(r"%s: held by relayctl" % qid_for(1))
        m = queue_json(self.r)[qid_for(1)]
        self.assertTrue(m["hold"])
        self.assertEqual(m["recipients"][0]["state"], "hold")
        # A held message is not handed out.
        d = self.peer(ROLE_DELIVERY)
        d.ready(5)
        j = d.job()
        self.assertEqual(j["qid"], qid_for(2))
        d.sock.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            d.recv()
        d.sock.settimeout(10)
        self.assertEqual(ctl("release", qid_for(1)).returncode, 0)
        self.r.wait_log(r"%s: released by relayctl" % qid_for(1))
        self.assertEqual(d.job()["qid"], qid_for(1))

        self.assertEqual(ctl("flush").returncode, 0)
        self.assertEqual(ctl("flush", qid_for(1)).returncode, 0)

        cp = ctl("stats")
        self.assertEqual(cp.returncode, 0)
        self.assertRegex(cp.stdout, r"queued\s+2")

        for cmd in ("show", "hold", "release", "flush", "delete"):
            cp = ctl(cmd, "0000000000000000")
            self.assertEqual(cp.returncode, 1, cmd)
            self.assertIn("relayctl: no such message: 0000000000000000", cp.stdout + cp.stderr)

        self.assertEqual(ctl("delete", qid_for(1)).returncode, 0)
        self.r.wait_log(r"%s: removed by relayctl" % qid_for(1))
        self.assertNotIn(qid_for(1), queue_json(self.r))
        self.assertNotIn(qid_for(1), db_messages(self.r.state_dir))
        cp = ctl("delete", "all")
        self.assertEqual(cp.returncode, 0)
        self.assertEqual(queue_json(self.r), {})
        self.assertEqual(ctl("queue").stdout.strip(), "queue is empty")
        self.assertEqual(integrity(self.r.state_dir), "ok")


def traced_by(pid):
    """The pid of the process tracing pid (0: none)."""
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^TracerPid:\s+(\d+)", f.read(), re.M).group(1))


@unittest.skipUnless(shutil.which("strace"), "strace injects the failing fsync")
class TestCommitFails(QueueWorkerTest):
    """A commit that fails (here fsync returning EIO, injected by strace
    into the queue worker: no root, no small file system needed) is never
    confirmed: the session gets 451 4.3.0, nothing of it stays, and the
    worker serves again once fsync works."""

    def fsync_fails(self, pid):
        """strace attached to pid, failing its every fsync/fdatasync with
        EIO until it is stopped (SIGINT detaches it)."""
        s = subprocess.Popen(["strace", "-q", "-o", "/dev/null", "-p", str(pid),
                              "-e", "trace=fsync,fdatasync",
                              "-e", "inject=fsync,fdatasync:error=EIO"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def detach():
            if s.poll() is None:
                s.send_signal(signal.SIGINT)
            s.communicate(timeout=10)
        self.addCleanup(detach)
        try:
            wait_until(lambda: s.poll() is not None or traced_by(pid) == s.pid, 10,
                       "strace to attach")
        except AssertionError:
            detach()
            raise
        if s.poll() is not None:
            self.skipTest("strace cannot attach (ptrace not allowed): %s"
                          % s.stderr.read().decode(errors="replace").strip())
        return detach

    def test_failed_commit_is_never_confirmed(self):
        p = self.peer(ROLE_INTAKE)
        self.commit(p, 1, qid_for(1))
        detach = self.fsync_fails(self.r.pids()["queue"])
        p.submit(2, qid_for(2), "s@example.com", ["a@x.example"], BODY)
        kind, sid, rest = p.reply()
        self.assertEqual((kind, sid), ("failed", 2), rest)
        self.assertEqual(rest[:2], (451, "4.3.0"))
        self.r.wait_log(r"queue.db: transaction rolled back \(disk I/O error\)")
        detach()
        self.assertEqual(traced_by(self.r.pids()["queue"]), 0)
        p.submit(3, qid_for(3), "s@example.com", ["a@x.example"], BODY)
        self.assertEqual(p.reply(), ("committed", 3, qid_for(3)))
        self.assertEqual(db_messages(self.r.state_dir), {qid_for(1), qid_for(3)})
        self.assertEqual(integrity(self.r.state_dir), "ok")


class TestDiskFull(unittest.TestCase):
    def test_full_disk_fails_452_then_serves_again(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a small tmpfs")
        r = Relayd(roles="queue", start=False)
        self.addCleanup(shutil.rmtree, r.dir, True)
        self.addCleanup(subprocess.run, ["umount", r.state_dir], timeout=10)
        self.addCleanup(r.stop)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", r.state_dir],
                       check=True, timeout=10)
        r.start()
        wait_until(lambda: os.path.exists(os.path.join(r.state_dir, "queue.sock")),
                 what="queue.sock")
        p = QueuePeer(r.state_dir, ROLE_INTAKE)
        self.addCleanup(p.close)
        p.submit(1, qid_for(1), "s@example.com", ["a@x.example"], BODY)
        self.assertEqual(p.reply(), ("committed", 1, qid_for(1)))
        # Fill the disk but for about 200 KB.
        st = os.statvfs(r.state_dir)
        filler = os.path.join(r.state_dir, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (st.f_bavail * st.f_frsize - 200 * 1024))
        p.submit(2, qid_for(2), "s@example.com", ["a@x.example"], b"x" * (2 << 20))
        kind, sid, (code, enh, text) = p.reply()
        self.assertEqual((kind, sid, code, enh), ("failed", 2, 452, "4.3.1"))
        r.wait_log(r"transaction rolled back \(database or disk is full\)")
        self.assertEqual(integrity(r.state_dir), "ok")
        # Space returns: the same worker serves again, nothing committed was lost.
        os.unlink(filler)
        p.submit(3, qid_for(3), "s@example.com", ["a@x.example"], BODY)
        self.assertEqual(p.reply(), ("committed", 3, qid_for(3)))
        self.assertEqual(db_messages(r.state_dir), {qid_for(1), qid_for(3)})
        self.assertEqual(integrity(r.state_dir), "ok")


if __name__ == "__main__":
    unittest.main()

"""lab_chaos.py - `make lab-chaos`: a fault drill in the lab. A steady load
of messages goes to the LAN smarthost and from there through the
organisations' relayd to the Maildirs, while a random worker (intake,
queue or delivery) of a random relayd of the lab is killed with SIGKILL
every few hundred milliseconds for 30 s. Then the load stops, the queues
drain, and the drill prints:

    accepted     messages that got "250 ... queued as" from the smarthost
    delivered    of those, found in a Maildir
    lost         accepted and never delivered (must be 0)
    duplicated   extra copies in the Maildirs (SMTP is at-least-once: a
                 connection cut after the final dot and before its 250 makes
                 the sender send again; expected small)

Exit status 1 when anything was lost. CHAOS_SECONDS, CHAOS_SENDERS and
LAB_PORT change the defaults (30 s, 4 senders, a free port).
"""
import glob
import json
import os
import random
import re
import signal
import smtplib
import sys
import tempfile
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab import RELAYS  # noqa: E402
from lab_test import start_lab  # noqa: E402

ROLES = ("intake", "queue", "delivery")
# Where the load goes: each through another relayd of the lab (v6.lab over ::1).
DESTS = ["bob@example.lab", "carol@fallback.lab", "dan@implicit.lab", "eve@secure.lab",
         "vic@v6.lab"]


class Drill:
    def __init__(self, lab, seconds, senders):
        self.lab, self.seconds, self.senders = lab, seconds, senders
        self.accepted = {}          # token -> qid
        self.refused = Counter()    # why a message was not accepted
        self.kills = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.seq = 0

    def token(self):
        with self.lock:
            self.seq += 1
            return "chaos-%06d" % self.seq

    def sender(self, i):
        rnd = random.Random(i)
        while not self.stop.is_set():
            tok = self.token()
            rcpt = rnd.choice(DESTS)
            msg = ("From: alice@lan.lab\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@lan.lab>\r\n"
                   "\r\nMessage %s of the fault drill.\r\n%s" % (rcpt, tok, tok, tok,
                                                                 "x" * 70 + "\r\n"))
            try:
                with smtplib.SMTP("127.0.0.10", self.lab.port, timeout=15) as s:
                    s.ehlo("load.lan.lab")
                    code, text = s.mail("alice@lan.lab")
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, text)
                    code, text = s.rcpt(rcpt)
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, text)
                    code, text = s.data(msg)
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, text)
                m = re.search(rb"queued as (\w+)", text)
                with self.lock:
                    self.accepted[tok] = m.group(1).decode() if m else "?"
            except smtplib.SMTPResponseException as e:
                with self.lock:
                    self.refused["%d reply" % e.smtp_code] += 1
                time.sleep(0.05)
            except (OSError, smtplib.SMTPException) as e:
                with self.lock:
                    self.refused[type(e).__name__] += 1
                time.sleep(0.05)

    def workers(self, name):
        """{role: pid} of the workers of the lab's relayd `name`."""
        master = self.lab.procs[name].pid
        out = {}
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % p) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != master:
                    continue
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    title = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except (OSError, ValueError, IndexError):
                continue
            for role in ROLES:
                if title.startswith("relayd: " + role):
                    out[role] = int(p)
        return out

    def killer(self):
        rnd = random.Random(1)
        names = ["lan"] + [r[0] for r in RELAYS]
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            time.sleep(rnd.uniform(0.2, 0.5))
            name, role = rnd.choice(names), rnd.choice(ROLES)
            pid = self.workers(name).get(role)
            if pid is None:
                self.kills["%s (not running at that moment)" % role] += 1
                continue
            try:
                os.kill(pid, signal.SIGKILL)
                self.kills[role] += 1
            except ProcessLookupError:
                pass

    def queued(self):
        """Messages still in the lab's queues (the ones relayctl can reach)."""
        n = 0
        for name in ["lan"] + [r[0] for r in RELAYS]:
            code, out = self.lab.ctl(name, "queue", "--json")
            if code != 0:
                return None  # a worker is restarting: ask again
            n += len(json.loads(out[:out.rindex("]") + 1]))
        return n

    def maildir_counts(self):
        """token -> copies found in the Maildirs; and the bounces alice got.
        self.org_ids: token -> the queue ids the organisation's relayd gave
        its copies (the second Received: from the top)."""
        counts, bounces = Counter(), 0
        self.org_ids = {}
        for path in glob.glob(self.lab.path("mail", "*", "*", "new", "*")):
            with open(path, errors="replace") as f:
                head = f.read(4096)
            if "/lan.lab/alice/" in path:
                bounces += 1
                continue
            m = re.search(r"^Subject: (chaos-\d+)", head, re.M)
            if m:
                counts[m.group(1)] += 1
                ids = re.findall(r"^Received: from \S+ .*? by (\S+) with ESMTP id (\w+)", head,
                                 re.M)
                self.org_ids.setdefault(m.group(1), []).append(ids[0] if ids else None)
        return counts, bounces

    def dup_hops(self, counts):
        """Where each extra copy was made: copies with one queue id at the
        organisation's relayd were made on its hop to the mailbox (it sent
        one message twice); different ids, on the smarthost's hop to it."""
        hops = Counter()
        for t, c in counts.items():
            if c > 1:
                ids = self.org_ids.get(t, [])
                hops["smarthost -> organisation"] += len(set(ids)) - 1
                hops["organisation -> mailbox"] += c - len(set(ids))
        return dict(hops)

    def run(self):
        t0 = time.monotonic()
        threads = [threading.Thread(target=self.sender, args=(i,), daemon=True)
                   for i in range(self.senders)]
        for t in threads:
            t.start()
        self.killer()
        self.stop.set()
        for t in threads:
            t.join(30)
        load_s = time.monotonic() - t0
        print("load and kills: %.0f s, %d accepted, kills %s, not accepted %s" % (
            load_s, len(self.accepted), dict(self.kills), dict(self.refused)), flush=True)
        # Drain: every queue empty and the Maildirs stable.
        t1 = time.monotonic()
        deadline = t1 + 300
        stable = 0
        last = None
        while time.monotonic() < deadline:
            q = self.queued()
            counts, _ = self.maildir_counts()
            now = sum(counts.values())
            stable = stable + 1 if q == 0 and now == last else 0
            last = now
            if stable >= 3:
                break
            time.sleep(1)
        drained = stable >= 3
        counts, bounces = self.maildir_counts()
        delivered = sum(1 for t in self.accepted if counts[t] > 0)
        lost = [t for t in self.accepted if counts[t] == 0]
        dup = sum(c - 1 for t, c in counts.items() if c > 1)
        unknown = [t for t in counts if t not in self.accepted]
        print("drain: %s after %.0f s" % ("queues empty" if drained else "NOT drained",
                                          time.monotonic() - t1))
        print("accepted %d, delivered %d, lost %d, duplicated %d" % (
            len(self.accepted), delivered, len(lost), dup))
        if dup:
            print("duplicated copies made on the hop %s" % self.dup_hops(counts))
        print("also: %d delivered that were not accepted (the 250 was lost with the "
              "connection), %d notices to the sender" % (len(unknown), bounces))
        if lost:
            print("lost: %s" % ", ".join("%s (%s)" % (t, self.accepted[t]) for t in lost[:20]))
        return 0 if not lost and drained else 1


def main():
    seconds = float(os.environ.get("CHAOS_SECONDS", "30"))
    senders = int(os.environ.get("CHAOS_SENDERS", "4"))
    d = tempfile.mkdtemp(prefix="relayd-lab-chaos-")
    lab = None
    status = 1
    try:
        lab = start_lab(d)
        print("lab up on port %d (%s); %d senders, kills for %.0f s" % (
            lab.port, d, senders, seconds), flush=True)
        status = Drill(lab, seconds, senders).run()
    finally:
        if lab is not None:
            lab.stop()
        else:
            import shutil
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()

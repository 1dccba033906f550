"""lab_test.py - `make lab-test`: the steps of docs/lab.md, run against a
fresh lab, each expectation checked, so that the tutorial cannot rot.

One line per step, named by its section of docs/lab.md ("ok   §5 ..." or
"FAIL §5 ...: why"), then
"N passed, N failed"; the exit status is 1 when a step failed. The lab runs
in its own temporary folder on a free port (LAB_PORT to choose one) and is
stopped, and its folder removed, whatever happens. About two minutes: the
delay notice of the last step comes after the lab's delay-warning (1m).

The hand-typed sessions of the tutorial (nc -C, openssl s_client) are
typed here over a socket, line by line, as a student would; dig, swaks and
relayctl are run as the tutorial runs them.
"""
import base64
import glob
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab import Lab, DNS_IP  # noqa: E402

LAN = "127.0.0.10"


class Talk:
    """A typed SMTP session: say(line) sends a line and returns the reply
    (code, [lines]) as the server wrote it."""

    def __init__(self, port, src=None, timeout=20):
        self.s = socket.create_connection((LAN, port), timeout=timeout,
                                          source_address=(src, 0) if src else None)
        self.f = self.s.makefile("rb")

    def reply(self):
        lines = []
        while True:
            line = self.f.readline().decode().rstrip("\r\n")
            if not line:
                raise EOFError("connection closed; got %r" % lines)
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def say(self, line):
        self.s.sendall(line.encode() + b"\r\n")
        return self.reply()

    def send_lines(self, lines):
        """Lines with no reply of their own (the message after 354)."""
        self.s.sendall(b"".join(x.encode() + b"\r\n" for x in lines))

    def starttls(self, cafile, name):
        code, lines = self.say("STARTTLS")
        ctx = ssl.create_default_context(cafile=cafile)
        self.s = ctx.wrap_socket(self.s, server_hostname=name)
        self.f = self.s.makefile("rb")
        return code, lines, self.s

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Steps:
    def __init__(self, lab):
        self.lab, self.P = lab, lab.port
        self.passed = self.failed = 0
        self.n = 0

    # ---- helpers -------------------------------------------------------------------

    def check(self, cond, why):
        if not cond:
            raise AssertionError(why)

    def expect(self, got, want, what):
        if got != want:
            raise AssertionError("%s: expected %r, got %r" % (what, want, got))

    def run(self, args, timeout=30):
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr

    def dig(self, *q):
        return self.run(["dig", "@" + DNS_IP, "-p", str(self.P), "+time=2", "+tries=1"] + list(q))

    def swaks(self, to, sender="alice@lan.lab", subject=None):
        """Sends one message to the smarthost as the tutorial does; its QID."""
        args = ["swaks", "--server", "%s:%d" % (LAN, self.P), "--from", sender, "--to", to,
                "--timeout", "20"]
        if subject:
            args += ["--header", "Subject: " + subject]
        code, out = self.run(args, timeout=60)
        m = re.search(r"<-  250 2\.0\.0 Ok: queued as (\w+)", out)
        self.check(code == 0 and m, "swaks to %s: %s" % (to, out[-500:]))
        return m.group(1)

    def log(self):
        with open(self.lab.path("log", "lan.log"), errors="replace") as f:
            return f.read()

    def wait(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = pred()
            if v:
                return v
            time.sleep(0.2)
        raise AssertionError("timed out (%d s) waiting for %s" % (timeout, what))

    def wait_log(self, rx, timeout=20):
        return self.wait(lambda: re.search(rx, self.log()), timeout, "log line /%s/" % rx)

    def status_line(self, qid, rcpt, status, timeout=20):
        return self.wait_log(r"%s: to=<%s>, relay=(\S+?),.*dsn=([0-9.]+), status=%s \((.*)\)"
                             % (qid, re.escape(rcpt), status), timeout)

    def mailbox(self, addr):
        local, _, dom = addr.partition("@")
        return sorted(glob.glob(self.lab.path("mail", dom, local, "new", "*")))

    def wait_mail(self, addr, rx, timeout=30):
        """The text of the first message in addr's Maildir matching rx."""
        def find():
            for path in self.mailbox(addr):
                with open(path, errors="replace") as f:
                    t = f.read()
                if re.search(rx, t, re.S):
                    return t
            return None
        return self.wait(find, timeout, "a message /%s/ in %s's Maildir" % (rx, addr))

    def ctl(self, *args):
        return self.lab.ctl("lan", *args)

    # ---- the steps, in the tutorial's order --------------------------------------------

    def s_greeting(self):
        """§1 Connect: the server speaks first, 220 and its name"""
        t = Talk(self.P)
        code, lines = t.reply()
        t.close()
        self.expect((code, lines[0].split()[1]), (220, "smtp.lan.lab"), "greeting")

    def s_ehlo(self):
        """§2 EHLO: 250 and the extensions (STARTTLS, no AUTH before TLS)"""
        t = Talk(self.P)
        t.reply()
        code, lines = t.say("EHLO student.lan.lab")
        t.close()
        ext = {x[4:].split()[0] for x in lines[1:]}
        self.expect(code, 250, "EHLO")
        self.check({"PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS"} <= ext,
                   "extensions %s" % sorted(ext))
        self.check("AUTH" not in ext, "AUTH offered before TLS: %s" % sorted(ext))

    def s_small_commands(self):
        """§3 HELP 214, NOOP 250, VRFY 252, RSET 250"""
        t = Talk(self.P)
        t.reply()
        t.say("EHLO student.lan.lab")
        got = [t.say(c)[0] for c in ("HELP", "NOOP", "VRFY bob", "RSET")]
        t.say("QUIT")
        t.close()
        self.expect(got, [214, 250, 252, 250], "HELP, NOOP, VRFY, RSET")

    def s_reply_classes(self):
        """§4 Reply classes: 503 bad sequence, 500 unknown command, 501 bad address"""
        t = Talk(self.P)
        t.reply()
        t.say("EHLO student.lan.lab")
        r1 = t.say("RCPT TO:<bob@example.lab>")
        r2 = t.say("FOO")
        t.say("MAIL FROM:<alice@lan.lab>")
        r3 = t.say("RCPT TO:<bob>")
        t.say("QUIT")
        t.close()
        got = [(c, x[0].split()[1]) for c, x in (r1, r2, r3)]
        self.expect(got, [(503, "5.5.1"), (500, "5.5.1"), (501, "5.1.3")], "replies")

    def s_by_hand(self):
        """§5 A message typed by hand: MAIL, RCPT, DATA, 354, the dot, 250 queued as, QUIT 221"""
        t = Talk(self.P)
        t.reply()
        t.say("EHLO student.lan.lab")
        got = [t.say("MAIL FROM:<alice@lan.lab>")[0], t.say("RCPT TO:<bob@example.lab>")[0],
               t.say("DATA")[0]]
        t.send_lines(["From: Alice <alice@lan.lab>", "To: Bob <bob@example.lab>",
                      "Subject: typed by hand", "", "Hello Bob, this went through three servers."])
        code, lines = t.say(".")
        got.append(code)
        got.append(t.say("QUIT")[0])
        t.close()
        self.expect(got, [250, 250, 354, 250, 221], "MAIL, RCPT, DATA, dot, QUIT")
        m = re.search(r"queued as (\w+)", lines[0])
        self.check(m, "no queue id in %r" % lines)
        self.hand_qid = m.group(1)
        self.hand_msg = self.wait_mail("bob@example.lab", r"Subject: typed by hand")

    def s_relay_denied(self):
        """§6 From outside (nc -s 127.0.0.99): 554 5.7.1 Relay access denied"""
        t = Talk(self.P, src="127.0.0.99")
        t.reply()
        t.say("EHLO outside.example")
        t.say("MAIL FROM:<someone@outside.example>")
        code, lines = t.say("RCPT TO:<bob@example.lab>")
        t.close()
        self.expect((code, lines[0][4:9]), (554, "5.7.1"), "RCPT from outside")

    def s_auth_needs_tls(self):
        """§7 AUTH before STARTTLS: 538 5.7.11"""
        t = Talk(self.P, src="127.0.0.99")
        t.reply()
        t.say("EHLO outside.example")
        code, lines = t.say("AUTH LOGIN")
        t.close()
        self.expect((code, lines[0][4:10]), (538, "5.7.11"), "AUTH without TLS")

    def s_starttls_auth_login(self):
        """§8 STARTTLS (lab CA), then AUTH LOGIN with base64 by hand: 334, 334, 235; relaying allowed"""
        t = Talk(self.P, src="127.0.0.99")
        t.reply()
        t.say("EHLO outside.example")
        code, _, tls = t.starttls(self.lab.ca, "smtp.lan.lab")
        self.expect(code, 220, "STARTTLS")
        self.check(tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version())
        code, lines = t.say("EHLO outside.example")
        self.check(any(x[4:].startswith("AUTH") and "LOGIN" in x for x in lines),
                   "no AUTH LOGIN after TLS: %r" % lines)
        r = [t.say("AUTH LOGIN"), t.say(base64.b64encode(b"alice").decode()),
             t.say(base64.b64encode(b"wonderland").decode())]
        self.expect([(c, x[0]) for c, x in r[:2]],
                    [(334, "334 VXNlcm5hbWU6"), (334, "334 UGFzc3dvcmQ6")], "AUTH LOGIN prompts")
        self.expect(base64.b64decode("VXNlcm5hbWU6"), b"Username:", "the first prompt")
        self.expect(r[2][0], 235, "the password")
        t.say("MAIL FROM:<alice@lan.lab>")
        code, _ = t.say("RCPT TO:<bob@example.lab>")
        t.say("QUIT")
        t.close()
        self.expect(code, 250, "RCPT after AUTH, from outside")

    def s_dig_mx(self):
        """§9 dig MX example.lab: two MX records, preferences 10 and 20"""
        code, out = self.dig("+short", "MX", "example.lab")
        self.expect(sorted(out.split("\n")[:2]), ["10 mx1.example.lab.", "20 mx2.example.lab."],
                    "dig +short MX example.lab")

    def s_route(self):
        """§9 relayctl route bob@example.lab: mx1 (10) is tried before mx2 (20)"""
        code, out = self.ctl("route", "bob@example.lab")
        self.expect(code, 0, "relayctl route")
        self.check(re.search(r"1\. mx1\.example\.lab \(MX 10\): 127\.0\.0\.11:%d\n"
                             r"\s+2\. mx2\.example\.lab \(MX 20\)" % self.P, out), out)

    def s_fallback(self):
        """§10 fallback.lab: mx1 refuses the connection, mx2 takes the mail"""
        qid = self.swaks("carol@fallback.lab")
        m = self.status_line(qid, "carol@fallback.lab", "sent")
        self.expect(m.group(1), "mx2.fallback.lab[127.0.0.12]:%d" % self.P, "relay")
        self.check(re.search(r"%s: connect to mx1\.fallback\.lab\[127\.0\.0\.13\]:%d: "
                             r"Connection refused" % (qid, self.P), self.log()),
                   "no refused connection to mx1 in the log")
        self.wait_mail("carol@fallback.lab", qid)

    def s_implicit(self):
        """§11 implicit.lab: no MX, its A record is the mail server"""
        _, mx = self.dig("+short", "MX", "implicit.lab")
        _, a = self.dig("+short", "A", "implicit.lab")
        self.expect((mx.strip(), a.strip()), ("", "127.0.0.14"), "MX and A of implicit.lab")
        qid = self.swaks("dan@implicit.lab")
        m = self.status_line(qid, "dan@implicit.lab", "sent")
        self.expect(m.group(1), "implicit.lab[127.0.0.14]:%d" % self.P, "relay")

    def s_null_mx(self):
        """§12 nullmx.lab: MX 0 . -> bounced 5.1.10 at once, the bounce in alice's Maildir"""
        _, mx = self.dig("+short", "MX", "nullmx.lab")
        self.expect(mx.strip(), "0 .", "MX of nullmx.lab")
        qid = self.swaks("x@nullmx.lab")
        m = self.status_line(qid, "x@nullmx.lab", "bounced")
        self.expect(m.group(2), "5.1.10", "dsn")
        self.wait_mail("alice@lan.lab", r"X-Relayd-Queue-ID: %s.*Status: 5\.1\.10" % qid)

    def s_nxdomain(self):
        """§13 nosuch.lab: NXDOMAIN -> bounced 5.1.2, no retry"""
        _, out = self.dig("MX", "nosuch.lab")
        self.check("status: NXDOMAIN" in out, out)
        qid = self.swaks("y@nosuch.lab")
        m = self.status_line(qid, "y@nosuch.lab", "bounced")
        self.expect(m.group(2), "5.1.2", "dsn")

    def s_dns_timeout(self):
        """§13 slow.lab: the DNS times out -> deferred 4.4.3, still in the queue"""
        code, out = self.dig("MX", "slow.lab")
        self.check(code == 9 and "timed out" in out, "dig: %d %s" % (code, out))
        self.slow_qid = self.swaks("sam@slow.lab")
        self.slow_t0 = time.monotonic()
        m = self.status_line(self.slow_qid, "sam@slow.lab", "deferred", timeout=40)
        self.expect(m.group(2), "4.4.3", "dsn")
        code, out = self.ctl("queue")
        self.check(re.search(r"%s.*\n\s+<sam@slow\.lab> deferred attempts=1" % self.slow_qid,
                             out), out)

    def s_greylist(self):
        """§14 grey.lab: 451 4.7.1 first (relayctl trace shows it), delivered at a retry"""
        qid = self.swaks("zoe@grey.lab")
        m = self.status_line(qid, "zoe@grey.lab", "deferred")
        self.expect(m.group(2), "4.7.1", "dsn")
        code, out = self.ctl("trace", qid)
        self.expect(code, 0, "relayctl trace")
        self.check(re.search(r"> RCPT TO:<zoe@grey\.lab>\n\S+ < 451 4\.7\.1 ", out), out)
        self.status_line(qid, "zoe@grey.lab", "sent", timeout=45)
        self.wait_mail("zoe@grey.lab", qid)

    def s_bounce(self):
        """§15 strict.lab: 550 5.1.1 -> a bounce with Diagnostic-Code and the transcript"""
        qid = self.swaks("nobody@strict.lab", subject="to a user who is not there")
        self.status_line(qid, "nobody@strict.lab", "bounced")
        t = self.wait_mail("alice@lan.lab", r"X-Relayd-Queue-ID: %s" % qid)
        for rx in (r"Subject: Undelivered Mail Returned to Sender",
                   r"From: Mail Delivery System <MAILER-DAEMON@smtp\.lan\.lab>",
                   r"Return-Path: <>",
                   r"Action: failed\nStatus: 5\.1\.1\nRemote-MTA: dns; mx\.strict\.lab",
                   r"Diagnostic-Code: smtp; host mx\.strict\.lab\[127\.0\.0\.16\] said: 550 5\.1\.1",
                   r"Transcript of the latest delivery attempt",
                   r"> RCPT TO:<nobody@strict\.lab>\n\S+ < 550 5\.1\.1",
                   r"Subject: to a user who is not there"):
            self.check(re.search(rx, t), "the bounce has no /%s/:\n%s" % (rx, t[:3000]))

    def s_received_chain(self):
        """§16 The Received: chain of §5's message: mailbox.lab, mx1.example.lab, smtp.lan.lab"""
        hdr = self.hand_msg.split("\n\n", 1)[0]
        by = re.findall(r"^Received: .*?\bby (\S+)", hdr, re.M | re.S)
        self.expect(by, ["mailbox.lab", "mx1.example.lab", "smtp.lan.lab"], "Received: by, top first")
        self.check("id %s" % self.hand_qid in hdr, "smtp.lan.lab's queue id not in Received:")

    def s_tls_trace(self):
        """§17 secure.lab over verified TLS, slow.lab waiting: relayctl trace shows both"""
        qid = self.swaks("eve@secure.lab,tom@slow.lab")
        self.status_line(qid, "eve@secure.lab", "sent")
        self.status_line(qid, "tom@slow.lab", "deferred", timeout=40)
        code, out = self.ctl("trace", qid)
        self.expect(code, 0, "relayctl trace")
        for rx in (r"--- recipients at secure\.lab",
                   r"> STARTTLS\n\S+ < 220 ",
                   r"\* TLS established: TLSv1\.[23] \S+; certificate subject /O=relayd lab/"
                   r"CN=mx\.secure\.lab, issuer /O=relayd lab/CN=relayd lab CA; chain verified "
                   r"\(tls=verify: required\)",
                   r"> \(message content, \d+ bytes as sent",
                   r"--- recipients at slow\.lab",
                   r"\* DNS: slow\.lab\. MX \(temporary failure"):
            self.check(re.search(rx, out), "trace has no /%s/:\n%s" % (rx, out))

    def s_ipv6(self):
        """§18 v6.lab: the MX has only an AAAA record, mail goes over ::1"""
        _, out = self.dig("+short", "AAAA", "mx.v6.lab")
        self.expect(out.strip(), "::1", "AAAA of mx.v6.lab")
        qid = self.swaks("vic@v6.lab")
        m = self.status_line(qid, "vic@v6.lab", "sent")
        self.expect(m.group(1), "mx.v6.lab[::1]:%d" % self.P, "relay")

    def s_delay_notice(self):
        """§19 After delay-warning (1m) the sender of §13's slow.lab message gets a delay notice"""
        t = self.wait_mail("alice@lan.lab", r"Subject: Delayed Mail.*X-Relayd-Queue-ID: %s"
                           % self.slow_qid, timeout=150)
        self.check(re.search(r"Action: delayed\nStatus: 4\.4\.3", t), t[:2000])
        self.check(re.search(r"Transcript of the latest delivery attempt.*<recipients at slow\.lab>"
                             r".*\* slow\.lab: temporary failure looking up the MX", t, re.S),
                   "no transcript in the delay notice:\n" + t[:3000])
        self.check(time.monotonic() - self.slow_t0 >= 55, "the notice came before 1m")

    STEPS = ["s_greeting", "s_ehlo", "s_small_commands", "s_reply_classes", "s_by_hand",
             "s_relay_denied", "s_auth_needs_tls", "s_starttls_auth_login", "s_dig_mx",
             "s_route", "s_fallback", "s_implicit", "s_null_mx", "s_nxdomain", "s_dns_timeout",
             "s_greylist", "s_bounce", "s_received_chain", "s_tls_trace", "s_ipv6",
             "s_delay_notice"]

    def run_all(self):
        for name in self.STEPS:
            fn = getattr(self, name)
            title = fn.__doc__.strip()
            t0 = time.monotonic()
            try:
                fn()
                self.passed += 1
                print("ok   %s (%.1f s)" % (title, time.monotonic() - t0), flush=True)
            except Exception as e:
                self.failed += 1
                why = str(e) if isinstance(e, AssertionError) else traceback.format_exc(limit=3)
                print("FAIL %s: %s" % (title, why.strip().replace("\n", "\n     ")), flush=True)


def lab_start_stop():
    """§0 make lab: lab.py comes up, prints its map, and on Ctrl-C (SIGINT)
    leaves no process and no file. A lab of its own, on another port."""
    d = tempfile.mkdtemp(prefix="relayd-lab-0-")
    os.rmdir(d)  # lab.py makes it
    env = dict(os.environ, LAB_DIR=d, LAB_PORT=str(random.randrange(40000, 50000)))
    p = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(
        __file__)), "lab.py")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    out = []
    try:
        for line in p.stdout:
            out.append(line)
            if line.startswith("lab: up in") or line.startswith("lab: stopped"):
                break
        up = any(x.startswith("lab: up in") for x in out)
        pids = []
        if up:
            # What runs: every process with its working directory in the lab folder.
            for q in os.listdir("/proc"):
                try:
                    if q.isdigit() and os.readlink("/proc/%s/cwd" % q).startswith(d + "/"):
                        pids.append(int(q))
                except OSError:
                    pass
            p.send_signal(signal.SIGINT)
        rest, _ = p.communicate(timeout=60)
        out.append(rest)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = "".join(out)
    alive = [x for x in pids if os.path.exists("/proc/%d" % x)]
    ok = (up and p.returncode == 0 and "DNS: dnsmasq at 127.0.0.5" in text and
          "LAN smarthost smtp.lan.lab" in text and len(pids) >= 20 and not alive and
          "lab: stopped; 0 process(es) left, folder removed" in text and not os.path.exists(d))
    why = "exit %s, %d processes seen, still alive %s, folder %s:\n%s" % (
        p.returncode, len(pids), alive, "left" if os.path.exists(d) else "removed", text[-1500:])
    return ok, why


def start_lab(d):
    """A lab on LAB_PORT, or on a free port (another test or lab may hold one)."""
    ports = [int(os.environ["LAB_PORT"])] if "LAB_PORT" in os.environ else \
        random.sample(range(20000, 40000), 8)
    for i, port in enumerate(ports):
        lab = Lab(d, port, quiet=True)
        try:
            return lab.start()
        except RuntimeError as e:
            if "is taken" not in str(e) or i == len(ports) - 1:
                raise
            os.makedirs(d, exist_ok=True)


def main():
    t0 = time.monotonic()
    ok0, why0 = lab_start_stop()
    print("%s §0 make lab: up, the map printed, Ctrl-C leaves no process and no file%s"
          % ("ok  " if ok0 else "FAIL", "" if ok0 else ": " + why0), flush=True)
    d = tempfile.mkdtemp(prefix="relayd-lab-test-")
    lab = None
    steps = None
    try:
        lab = start_lab(d)
        print("lab up on port %d in %.1f s (%s)" % (lab.port, time.monotonic() - t0, d), flush=True)
        steps = Steps(lab)
        steps.run_all()
    except Exception:
        traceback.print_exc()
    finally:
        if lab is not None:
            lab.stop()
        else:
            import shutil
            shutil.rmtree(d, ignore_errors=True)
    passed, failed = (steps.passed, steps.failed) if steps else (0, 1)
    passed, failed = passed + ok0, failed + (not ok0)
    left = lab.lab_pids() if lab is not None else []
    if left or os.path.exists(d):
        failed += 1
        print("FAIL the lab of the steps did not clean up: processes %s, folder %s" % (
            left, d if os.path.exists(d) else "removed"))
    print("%d passed, %d failed (%.0f s)" % (passed, failed, time.monotonic() - t0))
    sys.exit(1 if failed or steps is None else 0)


if __name__ == "__main__":
    main()

"""test_log_lines.py - logs that tools read (issue 14, point 6).

- Every refused command is logged once, Postfix style, and the line is
  read by the regexes a fail2ban filter uses (fail2ban's postfix filter,
  its "normal" and "auth" modes, with the host captured);
- a failed AUTH (PLAIN and LOGIN) gives Postfix's SASL warning with the
  client address;
- a client that keeps getting refused gets at most 10 reject lines, one
  line saying the rest are counted, and a count when it leaves;
- the README's grep/sed/awk recipes, run on a log that relayd wrote while
  delivering, deferring and refusing mail, print what happened.

Run: cd tests/integration && BIN=bin /usr/bin/python3 -m unittest -v test_log_lines
"""
import os
import re
import subprocess
import unittest

from dlv_base import DeliveryCase
from harness import Relayd, free_port, wait_until
from intake_util import Client, auth_users_file, b64, plain_ir, tls_conf

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")

# One reject line, every field named.
REJECT = re.compile(
    r"NOQUEUE: reject: (?P<verb>[A-Z-]+) from (?P<name>[^\s\[]+)\[(?P<addr>[0-9a-f.:]+)\]: "
    r"(?P<code>[45]\d\d) (?P<enh>[245]\.\d{1,3}\.\d{1,3}) (?P<text>[^;]*);"
    r"(?: from=<(?P<from>[^>]*)>)?(?: to=<(?P<to>[^>]*)>)? proto=(?P<proto>E?SMTP)"
    r"(?: helo=<(?P<helo>[^>]*)>)?$", re.M)
# fail2ban's filter.d/postfix.conf (0.11): the prefix of its "normal" and
# "auth" modes and their failregex, <HOST> as a named group.
F2B_HOST = r"(?P<host>[0-9a-f.:]+)"
F2B_NORMAL = re.compile(
    r"\w+: (?:milter-)?reject: [A-Z]{4} from [^[]*\[" + F2B_HOST + r"\](?::\d+)?: "
    r"[45][50][04] [45]\.\d\.\d+ (?:(?:<[^>]*>)?: )?(?:(?:Helo command|(?:Sender|Recipient) "
    r"address) rejected: )?(?:Service unavailable|(?:Client host|Command|Data command) "
    r"rejected|Relay access denied|(?:Host|Domain) not found|need fully-qualified hostname|"
    r"match|User unknown)\b")
F2B_AUTH = re.compile(
    r"warning: [^[]*\[" + F2B_HOST + r"\](?::\d+)?: SASL ((?i:LOGIN|PLAIN|(?:CRAM|DIGEST)-MD5)) "
    r"authentication failed(:(?! Connection lost to authentication server| Invalid "
    r"authentication mechanism)|$)")


class LogFormats(unittest.TestCase):
    def setUp(self):
        self.r = Relayd(conf_extra=tls_conf() + "auth-users %s\nauth-fail-limit 1000\n"
                        "mynetworks 127.0.0.1/32\nmax-recipients 2\nmax-message-size 1M\n"
                        "smarthost [127.0.0.1]:%d\n" % (auth_users_file(), free_port()))
        self.addCleanup(self.r.cleanup)

    def rejects(self, start=0):
        return [m.groupdict() for m in REJECT.finditer(self.r.log()[start:])]

    def test_each_refused_command_once(self):
        with Client(self.r.port, source="127.0.0.9") as c:
            c.greeting()
            c.ehlo("client.test")
            self.assertEqual(c.cmd("FOO bar").code, 500)
            self.assertEqual(c.cmd("MAIL FROM:<s@snd.test> SIZE=2000000").code, 552)
            self.assertEqual(c.cmd("MAIL FROM:<s@snd.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<x@far.test>").code, 554)
            self.assertEqual(c.cmd("QUIT").code, 221)
        wait_until(lambda: len(self.rejects()) >= 3, 10, lambda: self.r.log()[-2000:])
        got = self.rejects()
        common = {"name": "unknown", "addr": "127.0.0.9", "proto": "ESMTP",
                  "helo": "client.test"}
        self.assertEqual(got, [
            dict(common, verb="UNKNOWN", code="500", enh="5.5.1",
                 text="Error: command not recognized", to=None, **{"from": None}),
            dict(common, verb="MAIL", code="552", enh="5.3.4",
                 text="Message size exceeds fixed limit", to=None, **{"from": "s@snd.test"}),
            dict(common, verb="RCPT", code="554", enh="5.7.1", text="Relay access denied",
                 to="x@far.test", **{"from": "s@snd.test"}),
        ])
        # The relay refusal is what fail2ban's postfix filter looks for.
        hits = [m.group("host") for m in F2B_NORMAL.finditer(self.r.log())]
        self.assertEqual(hits, ["127.0.0.9"])
        # Once each: no other line about these refusals.
        self.assertNotIn("relay denied", self.r.log())

    def test_failed_auth_names_the_client(self):
        with Client(self.r.port) as c:
            c.greeting()
            c.ehlo("client.test")
            c.starttls()
            c.ehlo("client.test")
            self.assertEqual(c.cmd("AUTH PLAIN " + plain_ir("alice", "wrong")).code, 535)
            self.assertEqual(c.cmd("AUTH LOGIN " + b64("bob")).code, 334)
            self.assertEqual(c.cmd(b64("wrong too")).code, 535)
            c.cmd("QUIT")
        want = [("127.0.0.1", "PLAIN", "alice"), ("127.0.0.1", "LOGIN", "bob")]

        def found():
            return [(m.group("host"), m.group(2),
                     re.search(r"sasl_username=(\S+)", self.r.log()[m.end():].split("\n")[0])
                     .group(1)) for m in F2B_AUTH.finditer(self.r.log())]
        wait_until(lambda: found() == want, 10, lambda: "%r in %s" % (found(), self.r.log()))
        # The AUTH refusal is the SASL warning, not also a reject line.
        self.assertEqual(self.rejects(), [])

    def test_a_hammering_client_is_bounded(self):
        with Client(self.r.port) as c:
            c.greeting()
            c.ehlo("client.test")
            self.assertEqual(c.cmd("MAIL FROM:<s@snd.test>").code, 250)
            codes = [c.cmd("RCPT TO:<r%d@far.test>" % i).code for i in range(40)]
            self.assertEqual(codes, [250, 250] + [452] * 38)
            c.cmd("QUIT")
        self.r.wait_log(r"NOQUEUE: 28 more reject\(s\) from unknown\[127\.0\.0\.1\] not logged")
        got = self.rejects()
        self.assertEqual(len(got), 10)
        self.assertEqual({(g["verb"], g["code"], g["enh"]) for g in got},
                         {("RCPT", "452", "4.5.3")})
        self.assertEqual([g["to"] for g in got], ["r%d@far.test" % i for i in range(2, 12)])
        self.assertEqual(self.r.log().count("reject lines from unknown[127.0.0.1] stop here"), 1)


MX = [("ex.test", "mx.ex.test", 10), ("other.test", "mx.other.test", 10),
      ("dead.test", "mx.dead.test", 10)]
HOSTS = {"mx.ex.test": "127.0.0.2", "mx.other.test": "127.0.0.3", "mx.dead.test": "127.0.0.4"}


def readme_recipes():
    """[(title, command)] of the README's log recipes: the code block after
    "### Log recipes", each command after its "# title" line."""
    with open(README) as f:
        text = f.read()
    m = re.search(r"^### Log recipes\n.*?^```\n(.*?)^```", text, re.M | re.S)
    if m is None:
        raise AssertionError("no \"### Log recipes\" code block in the README")
    out, title = [], None
    for line in m.group(1).splitlines():
        if line.startswith("# "):
            title = line[2:]
        elif line.strip():
            out.append((title, line))
            title = None
    return out


class LogRecipes(DeliveryCase):
    BASE_CONF = "retry-min 1h\nretry-max 1h\noutbound-tls none\n"

    def test_readme_recipes_on_a_real_log(self):
        dns = self.dns(MX, HOSTS)
        self.mx("127.0.0.2")
        self.mx("127.0.0.3", rcpt={"later": "451 4.3.0 Try again later"})
        # nothing listens at 127.0.0.4: connection refused
        r = self.relayd(dns, tls_conf() + "mynetworks 127.0.0.1/32\nauth-users %s\n"
                        "auth-fail-limit 1000\n" % auth_users_file())
        sent = [self.send(r, "s@snd.test", ["a@ex.test", "b@ex.test"]),
                self.send(r, "s@snd.test", ["c@other.test"])]
        later = [self.send(r, "s@snd.test", ["later@other.test"]),
                 self.send(r, "s@snd.test", ["later@other.test"])]
        dead = self.send(r, "s@snd.test", ["x@dead.test"])
        for source, n in (("127.0.0.9", 2), ("127.0.0.8", 1)):
            for _ in range(n):
                with Client(r.port, source=source) as c:
                    c.greeting()
                    c.ehlo("client.test")
                    c.cmd("MAIL FROM:<s@snd.test>")
                    self.assertEqual(c.cmd("RCPT TO:<x@far.test>").code, 554)
                    c.cmd("QUIT")
        with Client(r.port, source="127.0.0.7") as c:
            c.greeting()
            c.ehlo("client.test")
            c.starttls()
            c.ehlo("client.test")
            for _ in range(2):
                self.assertEqual(c.cmd("AUTH PLAIN " + plain_ir("alice", "wrong")).code, 535)
        self.wait_status(r, sent[0], "a@ex.test", "sent")
        self.wait_status(r, sent[0], "b@ex.test", "sent")
        self.wait_status(r, sent[1], "c@other.test", "sent")
        self.wait_status(r, later[0], "later@other.test", "deferred")
        self.wait_status(r, later[1], "later@other.test", "deferred")
        self.wait_status(r, dead, "x@dead.test", "deferred")
        r.wait_log(r"SASL PLAIN authentication failed(.|\n)*SASL PLAIN authentication failed")

        deferred_dead = ("connect to mx.dead.test[127.0.0.4]:%d: Connection refused"
                         % self.mx_port)
        want = {
            "delivered per destination domain": ["2 ex.test", "1 other.test"],
            "deferral reasons, most frequent first": [
                "2 host mx.other.test[127.0.0.3] said: 451 4.3.0 Try again later "
                "(in reply to RCPT TO)", "1 " + deferred_dead],
            "clients refused most often": ["2 127.0.0.9", "1 127.0.0.8"],
            "failed AUTH per client address": ["2 127.0.0.7"],
            "the whole story of one message": None,  # checked below
        }
        recipes = readme_recipes()
        self.assertEqual(sorted(t for t, _ in recipes), sorted(want))
        for title, cmd in recipes:
            with self.subTest(recipe=title):
                self.assertTrue(cmd.startswith("journalctl -u relayd"), cmd)
                run = re.sub(r"^journalctl -u relayd( --since today)?", "cat \"$LOG\"", cmd)
                run = run.replace("QID", sent[0])
                p = subprocess.run(["bash", "-o", "pipefail", "-c", run], capture_output=True,
                                   text=True, timeout=20, env=dict(os.environ, LOG=r.log_path))
                self.assertEqual(p.returncode, 0, p.stderr)
                lines = [" ".join(x.split()) for x in p.stdout.splitlines()]
                if want[title] is not None:
                    self.assertEqual(lines, want[title], p.stdout)
                    continue
                # Every line of that message, and only those.
                self.assertTrue(all(sent[0] in x for x in lines), lines)
                self.assertTrue(any("from=<s@snd.test>" in x for x in lines), lines)
                self.assertEqual(sum("status=sent" in x for x in lines), 2, lines)


if __name__ == "__main__":
    unittest.main()

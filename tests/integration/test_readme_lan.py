"""README's "Relaying a LAN" walkthrough (issue 12) is correct: its files,
taken from the README as written, make a configuration `relayd -n`
accepts, and relayd run on it does what the walkthrough says -- sendmail's
mail to root leaves as it@example.org for admins@example.org through the
provider account; a LAN host's www-data@web3.lan.example is queued as
www-data@example.org (envelope and From:) and waits for the account's
rate=100/h, without an attempt; bob may send as
bob@sales.example.org only, and that mail leaves through the sales
account; `relayctl route` prints the rate line the README quotes.

What the test changes, and only that: /etc/relayd/ becomes a temp dir,
the listen addresses and state-dir are the test's, `user relayd` is
`user nobody`, the provider is a fake (aiosmtpd with STARTTLS and AUTH) on
127.0.0.6, and the users file gets real hashes for the README's users.
"""
import json
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import unittest

from fakes.dlv_mx import FakeMX
from harness import BIN, RELAYD, TOP, Relayd, free_port, make_cert, wait_until

SENDMAIL = os.path.join(BIN, "sendmail")


def walkthrough():
    """{path: content} of every file the README's "Relaying a LAN"
    section shows (a line starting with `/etc/relayd/NAME` introduces the
    next fenced block), and the section's text."""
    with open(os.path.join(TOP, "README.md")) as f:
        readme = f.read()
    m = re.search(r"^## Relaying a LAN\n(.*?)^## ", readme, re.M | re.S)
    if m is None:
        raise AssertionError("README.md has no \"Relaying a LAN\" section")
    section = m.group(1)
    files, name, block = {}, None, None
    for line in section.splitlines(keepends=True):
        if block is not None:
            if line.startswith("```"):
                if name is not None:
                    files[name] = "".join(block)
                name, block = None, None
            else:
                block.append(line)
        elif line.startswith("```"):
            block = []
        elif re.match(r"`/etc/relayd/[\w.-]+`", line):
            name = line[1:line.index("`", 1)]
    return files, section


@unittest.skipUnless(os.geteuid() == 0, "needs root: user nobody, uid 0 in Received:")
class ReadmeLan(unittest.TestCase):
    def setUp(self):
        self.files, self.section = walkthrough()
        self.tmp = tempfile.mkdtemp(prefix="relayd-lan-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_the_files_are_all_there(self):
        self.assertEqual(sorted(self.files), sorted(
            "/etc/relayd/" + n for n in ("relayd.conf", "rewrite-sender", "rewrite-recipient",
                                         "users", "auth-senders", "provider.auth",
                                         "sales.auth")))
        conf = self.files["/etc/relayd/relayd.conf"]
        for directive in ("smarthost", "sender-route", "rewrite-sender", "rewrite-recipient",
                          "auth-senders", "auth-users", "rate="):
            self.assertIn(directive, conf)
        self.assertIn("relayd -n -f /etc/relayd/relayd.conf", self.section)
        self.assertIn("relayd-sendmail", self.section)

    def install(self, r, sub_port, provider_port):
        """The README's files under self.tmp, relayd.conf adapted to r."""
        certdir = os.path.join(self.tmp, "made")
        os.mkdir(certdir)
        cert, key = make_cert(certdir, cn="relay.lan.example")
        shutil.copy(cert, os.path.join(self.tmp, "cert.pem"))
        shutil.copy(key, os.path.join(self.tmp, "key.pem"))
        for path, text in self.files.items():
            name = os.path.basename(path)
            if name == "users":
                # The README shows shortened hashes; the users are its own.
                users = re.findall(r"^(\w+):\$6\$", text, re.M)
                self.assertEqual(users, ["alice", "bob"])
                text = "".join("%s:%s\n" % (u, subprocess.run(
                    ["openssl", "passwd", "-6", "pw-" + u], capture_output=True, text=True,
                    check=True, timeout=30).stdout.strip()) for u in users)
            if name == "relayd.conf":
                subs = [("/etc/relayd/", self.tmp + "/"),
                        ("listen 0.0.0.0:25 smtp", "listen 127.0.0.1:%d smtp" % r.port),
                        ("listen 0.0.0.0:587 submission",
                         "listen 127.0.0.1:%d submission" % sub_port),
                        ("state-dir /var/spool/relayd", "state-dir " + r.state_dir),
                        ("user relayd", "user nobody"),
                        ("[smtp.provider.example]:587", "[127.0.0.6]:%d" % provider_port)]
                for old, new in subs:
                    self.assertIn(old, text)
                    text = text.replace(old, new)
                r.conf = text
                path = r.conf_path
            else:
                path = os.path.join(self.tmp, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o600)

    def test_walkthrough(self):
        provider_port = free_port("127.0.0.6")
        pcert = make_cert(self.tmp, cn="smtp.provider.example", name="provider")
        provider = FakeMX("127.0.0.6", provider_port, tls_cert=pcert,
                          auth={"relay@example.org": "s3cret-from-the-provider",
                                "sales@example.org": "another-s3cret"})
        self.addCleanup(provider.stop)
        r = Relayd(start=False)
        self.addCleanup(r.cleanup)
        sub_port = free_port()
        self.install(r, sub_port, provider_port)

        p = subprocess.run([RELAYD, "-n", "-f", r.conf_path], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual((p.returncode, p.stdout, p.stderr),
                         (0, "%s: configuration OK\n" % r.conf_path, ""))
        r.start()

        # sendmail on the relay itself, as the README runs it (as root).
        p = subprocess.run("printf 'Subject: test\\n\\nIt works.\\n' | %s -C %s -v root"
                           % (SENDMAIL, r.conf_path), shell=True, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"queued as \w+")
        m = provider.wait_messages(1)[0]
        self.assertEqual((m.mail_from, m.rcpt_tos, m.auth_user, m.tls),
                         ("it@example.org", ["admins@example.org"], "relay@example.org", True))
        self.assertIn(b"Received: by relay.lan.example (relayd, from userid 0)", m.data)

        # A LAN host relaying by address: leaves as the organisation, but
        # not before the account's rate=100/h allows (36 s after the first).
        with smtplib.SMTP("127.0.0.1", r.port, timeout=20) as s:
            s.ehlo("web3.lan.example")
            s.sendmail("www-data@web3.lan.example", ["someone@example.net"],
                       b"From: Web 3 <www-data@web3.lan.example>\r\nSubject: cron\r\n\r\nx\r\n")
        r.wait_log(r"to=<someone@example\.net>, relay=none, delay=[0-9.]+, dsn=4\.4\.5, "
                   r"status=deferred \(delivery rate-limited: rate=100/h for smarthost; "
                   r"next try in 3\d s\)")
        held = [m for m in json.loads(r.ctl("queue", "--json").stdout)]
        self.assertEqual([(m["sender"], m["recipients"][0]["attempts"]) for m in held],
                         [("www-data@example.org", 0)])
        p = r.ctl("show", held[0]["qid"])
        self.assertIn("From: Web 3 <www-data@example.org>", p.stdout)

        # bob on the submission port: his own sales address only, through the sales account.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", sub_port, timeout=20) as s:
            s.ehlo("laptop")
            s.starttls(context=ctx)
            s.ehlo("laptop")
            s.login("bob", "pw-bob")
            self.assertEqual(s.mail("alice@example.org"),
                             (553, b"5.7.1 Sender address not owned by user bob"))
            s.rset()
            s.sendmail("bob@sales.example.org", ["someone@example.net"],
                       b"From: bob@sales.example.org\r\nSubject: offer\r\n\r\nx\r\n")
        m = provider.wait_messages(2)[1]
        self.assertEqual((m.mail_from, m.rcpt_tos, m.auth_user, m.tls),
                         ("bob@sales.example.org", ["someone@example.net"],
                          "sales@example.org", True))

        # relayctl route prints what the README quotes.
        out = r.ctl("route", "someone@example.net", "--from", "bob@sales.example.org")
        self.assertIn("next hop: sender-route @sales.example.org -> [127.0.0.6]:%d\n"
                      % provider_port, out.stdout)
        rate = re.search(r"^rate: .*$", out.stdout, re.M)
        self.assertIsNotNone(rate, out.stdout)
        self.assertIn(rate.group(0), " ".join(self.section.split()))
        wait_until(lambda: len(re.findall(r"status=sent", r.log())) == 2, 10,
                   "two deliveries logged")
        self.assertNotRegex(r.log(), r"status=deferred \((?!delivery rate-limited)")
        self.assertEqual(len(provider.messages), 2)

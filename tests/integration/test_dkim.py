"""DKIM signing as mail leaves (issue 13, points 1 and 2): `dkim-sign`
keys (RSA-2048 and Ed25519, root-only files read by the master), the
records `relayctl dkim` prints, and every signature on what the next hop
received verified by dkimpy -- someone else's code -- with those records
in place of DNS: plain, multipart, odd folding, dot-stuffed lines, dual
signing; no signature for a foreign From: domain; bad keys refused with
FILE:LINE; a reload that changes the selector takes effect."""
import os
import re
import smtplib
import subprocess
import tempfile
import unittest

import dkim

from harness import RELAYD, Relayd, wait_until
from intake_util import Upstream, token


def genkey(directory, name, *args):
    path = os.path.join(directory, name)
    subprocess.run(["openssl", "genpkey", "-out", path] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    os.chmod(path, 0o600)
    return path


def records(r, domain):
    """{selector._domainkey.domain.: TXT} from `relayctl dkim DOMAIN`."""
    p = r.ctl("dkim", domain)
    if p.returncode != 0:
        raise AssertionError("relayctl dkim %s: %s%s" % (domain, p.stdout, p.stderr))
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r'(\S+) IN TXT "(.*)"$', line)
        if m:
            out[m.group(1).lower()] = m.group(2).encode()
    return out


def verify_all(data, recs):
    """(number of signatures, [verified?...]) by dkimpy."""
    def dnsfunc(name, timeout=5):
        key = name.decode() if isinstance(name, bytes) else name
        return recs.get(key.lower().rstrip(".") + ".")
    head = data.split(b"\r\n\r\n", 1)[0]
    n = len(re.findall(rb"(?im)^DKIM-Signature:", head))
    d = dkim.DKIM(data)
    return n, [d.verify(idx=i, dnsfunc=dnsfunc) for i in range(n)]


MESSAGES = {
    "plain": "From: Alice <alice@example.org>\r\nTo: bob@remote.example\r\n"
             "Subject: {t} plain\r\nMessage-ID: <{t}@example.org>\r\n\r\nHello.\r\n",
    "multipart": "From:   \"Alice A.\"\r\n\t<alice@example.org>\r\nTo: bob@remote.example,\r\n"
                 "  carol@remote.example\r\nSubject:  {t}   folded\r\n   subject \t\r\n"
                 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"xyz\"\r\n\r\n"
                 "--xyz\r\nContent-Type: text/plain\r\n\r\nline  with   spaces \t\r\n\r\n"
                 "--xyz\r\nContent-Type: application/octet-stream\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\nAAECAwQ=\r\n--xyz--\r\n\r\n\r\n",
    "dots": "From: alice@sub.example.org\r\nSubject: {t} dots\r\n\r\n.leading dot\r\n"
            "..two dots\r\n.\r\nafter a lone dot line\r\n",
}


class DkimTest(unittest.TestCase):
    def setUp(self):
        self.tmp = self.enterContext(tempfile.TemporaryDirectory())
        self.rsa = genkey(self.tmp, "rsa.pem", "-algorithm", "RSA",
                          "-pkeyopt", "rsa_keygen_bits:2048")
        self.ed = genkey(self.tmp, "ed.pem", "-algorithm", "ed25519")
        self.up = self.enterContext(Upstream())

    def start(self, keys):
        r = Relayd(conf_extra=self.up.conf() + keys)
        self.addCleanup(r.cleanup)
        return r

    def send(self, r, body, sender="alice@example.org"):
        t = token()
        with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as c:
            c.sendmail(sender, ["bob@remote.example"], body.format(t=t).encode())
        return self.up.wait_for(t)[0].data

    def test_dual_signed_and_verified_by_dkimpy(self):
        r = self.start("dkim-sign example.org rsa1 %s\ndkim-sign *.example.org ed1 %s\n"
                       % (self.rsa, self.ed))
        recs = records(r, "example.org")
        self.assertEqual(sorted(recs), ["ed1._domainkey.example.org.",
                                        "rsa1._domainkey.example.org."])
        self.assertIn(b"k=ed25519", recs["ed1._domainkey.example.org."])
        self.assertIn(b"k=rsa", recs["rsa1._domainkey.example.org."])
        for name, body in MESSAGES.items():
            data = self.send(r, body)
            # example.org itself has both keys; its subdomain only the *. one.
            want = 1 if "sub.example.org" in body else 2
            n, ok = verify_all(data, recs)
            self.assertEqual((n, ok), (want, [True] * want), name)
            self.assertIn(b"c=relaxed/relaxed", data)
            self.assertRegex(data.decode(), r"h=[^;]*from[^;]*:from;")  # From oversigned
        # The dot-stuffed lines arrived unstuffed, and the signature held.
        self.assertIn(b"\r\n.leading dot\r\n..two dots\r\n.\r\n", data)

    def test_foreign_from_not_signed(self):
        r = self.start("dkim-sign example.org rsa1 %s\n" % self.rsa)
        data = self.send(r, "From: x@other.example\r\nSubject: {t}\r\n\r\nhi\r\n",
                         sender="x@other.example")
        self.assertNotIn(b"DKIM-Signature", data)
        p = r.ctl("dkim", "other.example")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no dkim-sign key for other.example", p.stdout + p.stderr)

    def test_bad_keys_are_config_errors(self):
        small = genkey(self.tmp, "small.pem", "-algorithm", "RSA",
                       "-pkeyopt", "rsa_keygen_bits:512")
        conf = os.path.join(self.tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("dkim-sign example.org s %s\ndkim-sign example.org t %s\n"
                    "dkim-sign example.org u /nonexistent/key\n" % (small, conf))
        p = subprocess.run([RELAYD, "-n", "-f", conf], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:1: dkim-sign: %s: an RSA key under 1024 bits" % (conf, small), p.stderr)
        self.assertIn("%s:2: dkim-sign: %s: not a PEM private key" % (conf, conf), p.stderr)
        self.assertIn("%s:3: dkim-sign: cannot read /nonexistent/key" % conf, p.stderr)

    def test_reload_changes_the_selector(self):
        r = self.start("dkim-sign example.org old %s\n" % self.rsa)
        self.assertIn("s=old;", self.send(r, MESSAGES["plain"]).decode())
        with open(r.conf_path) as f:
            conf = f.read()
        with open(r.conf_path, "w") as f:
            f.write(conf.replace("dkim-sign example.org old", "dkim-sign example.org new"))
        p = r.ctl("reload")
        self.assertEqual(p.returncode, 0, p.stderr)
        data = self.send(r, MESSAGES["plain"])
        self.assertIn("s=new;", data.decode())
        self.assertEqual(verify_all(data, records(r, "example.org")), (1, [True]))


if __name__ == "__main__":
    unittest.main()

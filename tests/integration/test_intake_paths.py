"""test_intake_paths.py - intake's RFC 5321 paths over the wire (issue 4,
point 3; the unit test of the path parser holds the long table): quoted
local parts, address literals, the null sender, source routes accepted and
stripped, local part/domain/path length limits (501), and SMTPUTF8
(non-ASCII addresses need the MAIL parameter).

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_intake_paths
"""
import unittest

from intake_util import ReplyAsserts, SharedRelayd, accepted_lines, msg, token


def domain_of(n):
    """A syntactically valid domain of exactly n octets (labels of at most 63)."""
    labels = []
    left = n
    while left > 0:
        if labels:
            left -= 1  # the dot before this label
        size = min(63, left)
        if left - size == 1:  # leave room for a dot and one more octet
            size -= 1
        labels.append("d" * size)
        left -= size
    return ".".join(labels)


GOOD = [
    '"john doe"@client.example',
    '"quoted\\"pair"@client.example',
    '"a@b"@client.example',
    "user@[192.0.2.1]",
    "user@[IPv6:2001:db8::1]",
    "first.last+tag@sub.client.example",
    "x" * 64 + "@client.example",
    "user@" + domain_of(200),
]

# (path, why, enhanced code of the 501 to MAIL, to RCPT): bad syntax is
# 5.1.7 / 5.1.3 (bad sender / destination address syntax), a length over
# the RFC 5321 limits 5.5.4.
BAD = [
    ("user@", "empty domain", "5.1.7", "5.1.3"),
    ("@client.example", "empty local part", "5.1.7", "5.1.3"),
    ("user", "no domain", "5.1.7", "5.1.3"),
    ("us er@client.example", "space in the local part", "5.1.7", "5.1.3"),
    ("user@exa mple.example", "space in the domain", "5.1.7", "5.1.3"),
    ('"unterminated@client.example', "open quote", "5.1.7", "5.1.3"),
    ("user@@client.example", "two @", "5.1.7", "5.1.3"),
    ("user@[1.2.3]", "short IPv4 literal", "5.1.7", "5.1.3"),
    ("user@[300.1.1.1]", "IPv4 literal out of range", "5.1.7", "5.1.3"),
    ("user@[IPv6:zz::1]", "bad IPv6 literal", "5.1.7", "5.1.3"),
    ("x" * 65 + "@client.example", "local part of 65 octets", "5.5.4", "5.5.4"),
    ("a@" + domain_of(256), "domain of 256 octets", "5.5.4", "5.5.4"),
    ("x" * 64 + "@" + domain_of(200), "path over 256 octets", "5.5.4", "5.5.4"),
]


class IntakePaths(SharedRelayd, ReplyAsserts, unittest.TestCase):
    @classmethod
    def relayd_conf(cls):
        return "max-connections-per-ip 500\n"

    def test_domain_helper(self):
        for n in (1, 63, 64, 200, 255, 256):
            self.assertEqual(len(domain_of(n)), n)
            self.assertTrue(all(0 < len(l) <= 63 for l in domain_of(n).split(".")))

    def test_good_paths(self):
        for path in GOOD:
            with self.subTest(path=path):
                c = self.session()
                self.assertReply(c.cmd("MAIL FROM:<%s>" % path), 250, "2.1.0")
                self.assertReply(c.cmd("RCPT TO:<%s>" % path), 250, "2.1.5")

    def test_bad_paths(self):
        for path, why, mail_enh, rcpt_enh in BAD:
            with self.subTest(why=why):
                c = self.session()
                self.assertReply(c.cmd("MAIL FROM:<%s>" % path), 501, mail_enh, "MAIL: " + why)
                self.assertReply(c.cmd("MAIL FROM:<ok@client.example>"), 250, "2.1.0")
                self.assertReply(c.cmd("RCPT TO:<%s>" % path), 501, rcpt_enh, "RCPT: " + why)

    def test_source_route_stripped(self):
        t = token("route")
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<@hop1.example,@hop2.example:%s@client.example>" % t),
                         250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<@hop1.example:a@remote.example>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(msg(t))
        qid = self.assertQueued(c.reply())
        self.r.wait_log(r"%s: from=<%s@client\.example>, size=\d+, nrcpt=1" % (qid, t))

    def test_null_sender_and_not_null_rcpt(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<>"), 501, "5.1.3")

    def test_non_ascii_needs_smtputf8(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<jos\u00e9@client.example>".encode()), 553, "5.6.7")
        self.assertReply(c.cmd("MAIL FROM:<a@client.example>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<m\u00fcller@remote.example>".encode()), 553, "5.6.7")

    def test_smtputf8_message(self):
        t = token("utf8")
        c = self.session()
        self.assertReply(c.cmd(("MAIL FROM:<%s-jos\u00e9@client.example> SMTPUTF8" % t).encode()),
                         250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<m\u00fcller@b\u00fccher.example>".encode()), 250,
                         "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(msg(t).replace(b"hello", "gr\u00fc\u00dfe".encode()))
        self.assertQueued(c.reply())
        self.assertEqual(len(accepted_lines(self.r, t)), 1)


if __name__ == "__main__":
    unittest.main()

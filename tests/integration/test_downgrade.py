"""Mail that a next hop cannot take as it is, converted instead of bounced
(issue 11, points 3, 4 and 7; issue 13, point 2): 8-bit MIME to a server
without 8BITMIME becomes quoted-printable / base64 with RFC 2047 headers;
an SMTPUTF8 message with an ASCII envelope goes to a server without
SMTPUTF8 plain, only a UTF-8 address bounces (5.6.7); lines over 998
octets are broken. The next hop is aiosmtpd (which itself refuses lines
over 1000 octets); Python's email package parses what it received with no
defects and decodes the content sent, and dkimpy verifies the DKIM
signature made on the converted bytes, and so does OpenDKIM's
opendkim-testmsg (its DNS answered by dnsmasq in a network and mount
namespace of its own, where /etc/resolv.conf points at it)."""
import email
import email.policy
import os
import re
import smtplib
import subprocess
import tempfile
import unittest
from email.header import decode_header, make_header

from fakes.dlv_mx import FakeMX
from harness import Relayd, free_port
from intake_util import Upstream, token
from test_dkim import genkey, records, verify_all


# Inside `unshare -mn`: loopback up, resolv.conf on dnsmasq, which serves the
# DKIM records given as --txt-record arguments; then opendkim-testmsg
# verifies the message on stdin (silent and 0 when every signature holds).
OPENDKIM_SCRIPT = r"""
set -e
ip link set lo up
mount --bind "$1" /etc/resolv.conf
shift
dnsmasq --no-daemon --port=53 --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
    --no-hosts --conf-file=/dev/null --pid-file= --local=/example.org/ "$@" >/dev/null 2>&1 &
for i in $(seq 100); do
    ss -lun | grep -q '127.0.0.1:53 ' && break
    sleep 0.05
done
rc=0
opendkim-testmsg || rc=$?
kill %1
exit $rc
"""


def opendkim_verify(data, recs):
    """(exit status, output) of opendkim-testmsg verifying data, with recs
    ({name.: b"v=DKIM1; ..."}) as the DNS."""
    txt = []
    for name, value in recs.items():
        v = value.decode()
        # TXT strings of at most 255 octets; dnsmasq takes them comma-separated
        txt.append("--txt-record=%s,%s" % (name.rstrip("."),
                                            ",".join(v[i:i + 250] for i in range(0, len(v), 250))))
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as resolv:
        resolv.write("nameserver 127.0.0.1\n")
        resolv.flush()
        p = subprocess.run(["unshare", "-mn", "bash", "-c", OPENDKIM_SCRIPT, "odk", resolv.name]
                           + txt, input=data, capture_output=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


class OldUpstream(Upstream):
    """An Upstream whose EHLO leaves out some keywords."""

    def __init__(self, drop):
        FakeMX.__init__(self, "127.0.0.1", free_port(), data_size_limit=64 * 1024 * 1024,
                        start=False, ehlo_drop=drop, rcpt={"nobody": "550 5.1.1 No such user"})


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.default)


def leaves(msg):
    return [p for p in msg.walk() if not p.is_multipart()]


def text_of(header_value):
    return str(make_header(decode_header(header_value)))


TEXT_8BIT = ("Grüße aus Köln ☕\r\nZeile mit = Zeichen und Leerzeichen am Ende   \r\n"
             + "ä" * 300 + "\r\n.ein Punkt vorn\r\n")
ATTACH = bytes(range(1, 10)) + bytes(range(14, 256)) + b"\r\nsecond line \xff\xfe\r\n"

PLAIN = ("From: Jörg Müller <alice@example.org>\r\nTo: bob@remote.example\r\n"
         "Subject: {t} Grüße ☕ und mehr\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")

MULTI = ("From: alice@example.org\r\nTo: \"Zoë, Q.\" <bob@remote.example>\r\n"
         "Subject: {t} Anhang für dich\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
         "preamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
         "--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit"
         "\r\n\r\n{text}\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\n"
         "Content-Transfer-Encoding: 8bit\r\n\r\n<p>Grüße</p>\r\n--inner--\r\n"
         "\r\n--outer\r\nContent-Type: application/octet-stream\r\n"
         "Content-Transfer-Encoding: 8bit\r\n"
         "Content-Disposition: attachment; filename=\"café.bin\"\r\n\r\n")


class SignedRelay(unittest.TestCase):
    """One relayd for the class, before cls.up (make_upstream), signing example.org
    with a key of cls.KEY: (file name, selector, openssl genpkey arguments)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        name, selector, args = cls.KEY
        cls.key = genkey(cls.tmp.name, name, *args)
        cls.up = cls.make_upstream().__enter__()
        try:
            cls.r = Relayd(conf_extra=cls.up.conf()
                           + "dkim-sign example.org %s %s\n" % (selector, cls.key))
            cls.recs = records(cls.r, "example.org")
        except BaseException:
            cls.up.__exit__(None, None, None)
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.r.cleanup()
        cls.up.__exit__(None, None, None)
        cls.tmp.cleanup()


class Downgrade8bit(SignedRelay):
    """A smarthost without 8BITMIME (nor SMTPUTF8), a DKIM key for example.org."""
    KEY = ("rsa.pem", "s1", ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"))

    @staticmethod
    def make_upstream():
        return OldUpstream(["8BITMIME", "SMTPUTF8"])

    def relay(self, data, t, sender="alice@example.org", opts=("BODY=8BITMIME",)):
        with smtplib.SMTP("127.0.0.1", self.r.port, timeout=10) as c:
            c.sendmail(sender, ["bob@remote.example"], data, mail_options=list(opts))
        return self.up.wait_for(t)[0]

    def assertClean(self, m):
        """7-bit, lines within 998 octets, no BODY=8BITMIME, no parse defects, DKIM holds."""
        self.assertTrue(all(b < 128 for b in m.data), "8-bit octets in what was received")
        self.assertLessEqual(max(len(x) for x in m.data.split(b"\r\n")), 998)
        opts = [o for mo in self.up.mail_options for o in mo]
        self.assertNotIn("BODY=8BITMIME", opts)
        msg = parse(m.data)
        self.assertEqual([(p.get_content_type(), p.defects) for p in msg.walk()],
                         [(p.get_content_type(), []) for p in msg.walk()])
        self.assertEqual(verify_all(m.data, self.recs), (1, [True]))
        self.assertEqual(opendkim_verify(m.data, self.recs), (0, ""))
        return msg

    def test_8bit_text_plain(self):
        t = token("qp")
        sent = PLAIN.format(t=t) + TEXT_8BIT
        m = self.relay(sent.encode(), t)
        got = self.assertClean(m)
        self.assertEqual(got["Content-Transfer-Encoding"], "quoted-printable")
        self.assertEqual(text_of(got["Subject"]), "%s Grüße ☕ und mehr" % t)
        self.assertEqual(got["From"].addresses[0].display_name, "Jörg Müller")
        self.assertEqual(got["From"].addresses[0].addr_spec, "alice@example.org")
        self.assertEqual(got.get_payload(decode=True), TEXT_8BIT.encode())
        self.r.wait_log(r"converted for 127\.0\.0\.1\[127\.0\.0\.1\] \(7-bit body, ASCII headers\)")

    def test_multipart_with_8bit_attachment(self):
        t = token("mp")
        sent = MULTI.format(t=t, text=TEXT_8BIT).encode() + ATTACH + b"\r\n--outer--\r\nepilogue\r\n"
        m = self.relay(sent, t)
        got = self.assertClean(m)
        orig = email.message_from_bytes(sent, policy=email.policy.default)
        self.assertEqual([p.get_content_type() for p in got.walk()],
                         [p.get_content_type() for p in orig.walk()])
        for a, b in zip(leaves(orig), leaves(got)):
            self.assertEqual(b.get_payload(decode=True), a.get_payload(decode=True),
                             a.get_content_type())
        cte = [p["Content-Transfer-Encoding"] for p in leaves(got)]
        self.assertEqual(cte, ["quoted-printable", "quoted-printable", "base64"])
        self.assertEqual(leaves(got)[2].get_filename(), "café.bin")
        self.assertEqual(got["To"].addresses[0].display_name, "Zoë, Q.")
        self.assertEqual(text_of(got["Subject"]), "%s Anhang für dich" % t)

    def test_unconvertible_bounces_with_the_reason(self):
        """A UTF-8 address in From: cannot be written in 7 bits: 5.6.3 with why."""
        t = token("bad")
        start = len(self.r.log())
        with smtplib.SMTP("127.0.0.1", self.r.port, timeout=10) as c:
            c.sendmail("alice@example.org", ["bob@remote.example"],
                       ("From: jörg@example.org\r\nSubject: %s\r\n\r\nü\r\n" % t).encode(),
                       mail_options=["BODY=8BITMIME"])
        line = self.r.wait_log(r".*to=<bob@remote\.example>.*status=bounced.*", 20, start)
        self.assertIn("5.6.3", line.group(0))
        self.assertIn("does not support 8BITMIME and the message cannot be converted: "
                      "the From: header holds a UTF-8 address", line.group(0))
        # nothing reached bob; what went out with the token is the bounce to alice
        self.up.wait_for(t)
        self.assertEqual([(m.mail_from, m.rcpt_tos) for m in self.up.find(t)],
                         [("<>", ["alice@example.org"])])

    def test_bounce_of_smtputf8_message_converted(self):
        """The bounce of an SMTPUTF8 message, 8-bit (it quotes the headers), to
        a server with neither 8BITMIME nor SMTPUTF8: converted and delivered,
        where it used to bounce itself (and a bounce's bounce is dropped)."""
        t = token("dsn")
        sent = ("From: Jörg <alice@example.org>\r\nSubject: %s Grüße ☕\r\n\r\nü\r\n" % t)
        with smtplib.SMTP("127.0.0.1", self.r.port, timeout=10) as c:
            c.ehlo()
            c.sendmail("alice@example.org", ["nobody@remote.example"], sent.encode(),
                       mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        m = self.up.wait_for(t)[0]
        self.assertEqual((m.mail_from, m.rcpt_tos), ("<>", ["alice@example.org"]))
        self.assertTrue(all(b < 128 for b in m.data), "8-bit octets in the bounce")
        got = parse(m.data)
        self.assertEqual([(p.get_content_type(), p.defects) for p in got.walk()],
                         [(p.get_content_type(), []) for p in got.walk()])
        text = b"".join(p.get_payload(decode=True) or b"" for p in leaves(got)).decode()
        self.assertIn("nobody@remote.example", text)
        # The quoted headers (RFC 6533 message/global-headers), decoded again.
        returned = got.get_payload()[2]
        self.assertEqual(returned.get_content_type(), "message/global-headers")
        self.assertEqual(returned.get_payload()[0]["Subject"], "%s Grüße ☕" % t)


class Smtputf8OnlyWhereNeeded(unittest.TestCase):
    """A smarthost with 8BITMIME but without SMTPUTF8."""

    @classmethod
    def setUpClass(cls):
        cls.up = OldUpstream(["SMTPUTF8"]).__enter__()
        try:
            cls.r = Relayd(conf_extra=cls.up.conf())
        except BaseException:
            cls.up.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.r.cleanup()
        cls.up.__exit__(None, None, None)

    def test_ascii_envelope_goes_without_smtputf8(self):
        t = token("u8")
        body = "Grüße ☕\r\n"
        sent = ("From: Jörg <alice@example.org>\r\nSubject: %s Grüße\r\n\r\n%s" % (t, body))
        start = len(self.r.log())
        with smtplib.SMTP("127.0.0.1", self.r.port, timeout=10) as c:
            c.ehlo()
            refused = c.sendmail("alice@example.org",
                                 ["bob@remote.example", "jörg@remote.example"],
                                 sent.encode(), mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        self.assertEqual(refused, {})
        m = self.up.wait_for(t)[0]
        self.assertEqual(m.rcpt_tos, ["bob@remote.example"])
        self.assertNotIn("SMTPUTF8", [o for mo in self.up.mail_options for o in mo])
        head, _, rest = m.data.partition(b"\r\n\r\n")
        self.assertTrue(all(b < 128 for b in head), head)
        self.assertEqual(rest, body.encode())  # 8BITMIME is there: the body stays 8-bit
        got = parse(m.data)
        self.assertEqual(text_of(got["Subject"]), "%s Grüße" % t)
        self.assertEqual(got["From"].addresses[0].display_name, "Jörg")
        line = self.r.wait_log(r".*to=<jörg@remote\.example>.*status=bounced.*", 20, start)
        self.assertIn("5.6.7", line.group(0))
        self.assertIn("does not support SMTPUTF8, needed by the UTF-8 recipient address",
                      line.group(0))


class LongLines(SignedRelay):
    """Lines up to 64 KiB come in; they leave in lines of at most 998 octets, signed."""
    KEY = ("ed.pem", "e1", ("-algorithm", "ed25519"))
    make_upstream = staticmethod(Upstream)

    def test_long_body_and_header_lines_broken(self):
        t = token("long")
        words = " ".join("w%04d" % i for i in range(500))  # 2999 octets, blanks to fold at
        blob = "b" * 3000                                   # no blank at all
        body_line = "".join("%05d" % i for i in range(1000))  # 5000 octets
        sent = ("From: alice@example.org\r\nSubject: %s %s\r\nX-Blob: %s\r\n\r\n"
                "short\r\n%s\r\nend\r\n" % (t, words, blob, body_line))
        with smtplib.SMTP("127.0.0.1", self.r.port, timeout=10) as c:
            c.sendmail("alice@example.org", ["bob@remote.example"], sent.encode())
        m = self.up.wait_for(t)[0]
        lines = m.data.split(b"\r\n")
        self.assertLessEqual(max(len(x) for x in lines), 998)
        head, _, body = m.data.partition(b"\r\n\r\n")
        got = parse(m.data)
        self.assertEqual(got.defects, [])
        # folded at blanks: unfolding gives the header back
        self.assertEqual(got["Subject"], "%s %s" % (t, words))
        # no blank: a space was put in where it was broken
        self.assertEqual(got["X-Blob"].replace(" ", ""), blob)
        # the body line split: its pieces make it again
        self.assertEqual(body.split(b"\r\n")[0], b"short")
        self.assertEqual(b"".join(body.split(b"\r\n")[1:-2]), body_line.encode())
        self.assertEqual(body.split(b"\r\n")[-2], b"end")
        self.assertEqual(verify_all(m.data, self.recs), (1, [True]))
        self.assertEqual(opendkim_verify(m.data, self.recs), (0, ""))
        # and OpenDKIM is not simply silent: one changed octet fails it
        rc, out = opendkim_verify(m.data.replace(b"short", b"shorT"), self.recs)
        self.assertNotEqual(rc, 0)
        self.assertIn("Bad signature", out)


if __name__ == "__main__":
    unittest.main()

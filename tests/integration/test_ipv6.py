"""test_ipv6.py - `listen [::1]:PORT` with an IPv6 client (issue 8, point 5):
smtplib over ::1 is served, the accepted-message log line says
`client=[::1]`, mynetworks matches the IPv6 address as such, and the
message is relayed.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_ipv6
"""
import re
import smtplib
import unittest

from e2e_util import free_port6, submit
from harness import Relayd
from intake_util import Upstream, headers_of, token


class IPv6Listen(unittest.TestCase):
    def start(self, extra):
        self.port6 = free_port6()
        r = Relayd(conf_extra="listen [::1]:%d smtp\n%s" % (self.port6, extra))
        self.addCleanup(r.cleanup)
        return r

    def test_ipv6_client_is_accepted_logged_and_relayed(self):
        with Upstream() as up:
            r = self.start(up.conf())
            r.wait_log(r"intake: listening on \[::1\]:%d" % self.port6)
            subject = token("v6")
            qid = submit(self.port6, "s@lan.test", ["a@far.test"], subject, host="::1")
            r.wait_log(r"%s: from=<s@lan\.test>, size=\d+, nrcpt=1, client=\[::1\]"
                       % re.escape(qid))
            got = up.wait_for(subject)
            self.assertEqual(len(got), 1)
            self.assertEqual(got[0].rcpt_tos, ["a@far.test"])
            r.wait_log(r"%s: to=<a@far\.test>, relay=\S+, .*status=sent" % re.escape(qid))

    def test_received_header_names_the_ipv6_client_as_an_address_literal(self):
        # RFC 5321 4.4: TCP-info is an address-literal, "[IPv6:" addr "]" for IPv6.
        with Upstream() as up:
            r = self.start(up.conf())
            subject = token("v6rcvd")
            submit(self.port6, "s@lan.test", ["a@far.test"], subject, host="::1")
            received = [v for n, v in headers_of(up.wait_for(subject)[0].data)
                        if n.lower() == "received"]
            self.assertRegex(received[0], r"^from client\.test \(\[IPv6:::1\]\) by relayd\.test ")

    def test_mynetworks_without_ipv6_loopback_refuses_relaying_from_it(self):
        r = self.start("mynetworks 127.0.0.0/8\n")
        with smtplib.SMTP("::1", self.port6, timeout=10) as s:
            s.ehlo("client.test")
            self.assertEqual(s.mail("s@lan.test")[0], 250)
            code, text = s.rcpt("a@far.test")
            self.assertEqual((code, text[:5]), (554, b"5.7.1"))
        r.wait_log(r"reject: RCPT from unknown\[::1\]: 554 5\.7\.1 .*to=<a@far\.test>")
        # The IPv4 loopback is still in mynetworks.
        with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail("s@lan.test")
            self.assertEqual(s.rcpt("a@far.test"), (250, b"2.1.5 Ok"))


if __name__ == "__main__":
    unittest.main()

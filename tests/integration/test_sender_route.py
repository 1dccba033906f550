"""Sender-dependent next hops (issue 12, point 4): `sender-route PATTERN
NEXTHOP [tls=] [auth=FILE]` sends each department's mail through its own
provider account -- matched against the sender after rewrite-sender --
with precedence route > sender-route > smarthost > MX, shown by `relayctl
route ADDRESS --from SENDER`. Two departments' mail for one domain leaves
by two connections with two AUTH users, never one. Real relayd, dnsmasq and
fake next hops (aiosmtpd with STARTTLS and AUTH) on 127.0.0.x."""
import os
import shutil
import subprocess
import tempfile

from dlv_base import DeliveryCase
from harness import RELAYCTL, RELAYD, free_port, make_cert

EX_MX = [("ex.test", "mx1.ex.test", 10)]
EX_HOSTS = {"mx1.ex.test": "127.0.0.2"}


class SenderRoute(DeliveryCase):
    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="relayd-sroute-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.mkdir(os.path.join(self.tmp, "cert"))
        self.cert = make_cert(os.path.join(self.tmp, "cert"), cn="provider.test")

    def auth_file(self, name, user, pw):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write("%s %s\n" % (user, pw))
        os.chmod(path, 0o600)
        return path

    def hop(self, host, **kw):
        port = free_port(host)
        return self.mx(host, port=port, **kw), port

    def start(self, delay=0.0, extra=""):
        """delay: the department hops hold their first end-of-DATA reply."""
        dns = self.dns(EX_MX, EX_HOSTS)
        self.mx1 = self.mx("127.0.0.2")
        self.sales, sp = self.hop("127.0.0.6", tls_cert=self.cert, auth={"carol": "pw-sales"},
                                  first_data_delay=delay)
        self.it, ip = self.hop("127.0.0.7", tls_cert=self.cert, auth={"dave": "pw-it"},
                               first_data_delay=delay)
        self.sh, shp = self.hop("127.0.0.8")
        self.routed, rp = self.hop("127.0.0.9")
        smap = os.path.join(self.tmp, "rewrite")
        with open(smap, "w") as f:
            f.write("@.lan.test @it.example.org\n")
        self.ports = {"sales": sp, "it": ip, "sh": shp, "routed": rp}
        return self.relayd(dns, "rewrite-sender %s\n"
                           "sender-route @sales.example.org [127.0.0.6]:%d tls=starttls auth=%s\n"
                           "sender-route @it.example.org [127.0.0.7]:%d tls=starttls auth=%s\n"
                           "smarthost [127.0.0.8]:%d tls=none\n"
                           "route routed.test [127.0.0.9]:%d tls=none\n%s"
                           % (smap, sp, self.auth_file("sales.auth", "carol", "pw-sales"),
                              ip, self.auth_file("it.auth", "dave", "pw-it"), shp, rp, extra))

    def test_each_department_through_its_account(self):
        r = self.start()
        q_sales = self.send(r, "x@sales.example.org", ["a@ex.test"])
        # Matched after rewriting: y@web3.lan.test leaves as y@it.example.org.
        q_it = self.send(r, "y@web3.lan.test", ["b@ex.test"])
        q_other = self.send(r, "z@other.test", ["c@ex.test"])
        q_routed = self.send(r, "x@sales.example.org", ["d@routed.test"])
        for qid, rcpt in ((q_sales, "a@ex.test"), (q_it, "b@ex.test"),
                          (q_other, "c@ex.test"), (q_routed, "d@routed.test")):
            self.wait_status(r, qid, rcpt, "sent")
        m = self.sales.wait_messages(1)
        self.assertEqual([(x.mail_from, x.rcpt_tos, x.auth_user, x.tls) for x in m],
                         [("x@sales.example.org", ["a@ex.test"], "carol", True)])
        m = self.it.wait_messages(1)
        self.assertEqual([(x.mail_from, x.rcpt_tos, x.auth_user, x.tls) for x in m],
                         [("y@it.example.org", ["b@ex.test"], "dave", True)])
        # No sender-route matches: the smarthost. A route for the domain beats the sender's.
        m = self.sh.wait_messages(1)
        self.assertEqual([(x.mail_from, x.rcpt_tos, x.auth_user) for x in m],
                         [("z@other.test", ["c@ex.test"], None)])
        m = self.routed.wait_messages(1)
        self.assertEqual([(x.mail_from, x.rcpt_tos) for x in m],
                         [("x@sales.example.org", ["d@routed.test"])])
        self.assertEqual(self.mx1.messages, [])
        self.assertEqual(len(self.sales.messages) + len(self.it.messages), 2)

    def test_one_domain_two_departments_never_share_a_connection(self):
        # One connection per destination, its first message held: the
        # others wait and go over that connection when it is free -- the
        # wrong account's, were the two departments one destination.
        r = self.start(delay=2.0, extra="concurrency-per-destination 1\n")
        qids = [self.send(r, s, ["a@ex.test"]) for s in
                ("p@sales.example.org", "q@it.example.org", "r@sales.example.org",
                 "s@it.example.org")]
        for qid in qids:
            self.wait_status(r, qid, "a@ex.test", "sent")
        self.assertEqual(sorted((x.mail_from, x.auth_user) for x in self.sales.wait_messages(2)),
                         [("p@sales.example.org", "carol"), ("r@sales.example.org", "carol")])
        self.assertEqual(sorted((x.mail_from, x.auth_user) for x in self.it.wait_messages(2)),
                         [("q@it.example.org", "dave"), ("s@it.example.org", "dave")])
        out = r.ctl("stats")
        self.assertRegex(out.stdout, r"conn_reuse\s+2\b")

    def test_relayctl_route_from(self):
        r = self.start()
        out = r.ctl("route", "a@ex.test", "--from", "x@Sales.Example.org")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("sender: x@Sales.Example.org\n", out.stdout)
        self.assertIn("next hop: sender-route @sales.example.org -> [127.0.0.6]:%d\n"
                      % self.ports["sales"], out.stdout)
        self.assertIn("tls: starttls (tls= of the next hop)\n", out.stdout)
        self.assertIn("auth: as carol, sent only over TLS\n", out.stdout)
        self.assertIn("127.0.0.6:%d" % self.ports["sales"], out.stdout)

        out = r.ctl("route", "d@routed.test", "--from", "x@sales.example.org")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("next hop: route routed.test -> [127.0.0.9]:%d\n" % self.ports["routed"],
                      out.stdout)
        self.assertIn("not taken: sender-route @sales.example.org (a route for the domain "
                      "comes first)\n", out.stdout)

        for args in (("a@ex.test",), ("a@ex.test", "--from", "z@other.test")):
            out = r.ctl("route", *args)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("next hop: smarthost 1 of 1 -> [127.0.0.8]:%d\n" % self.ports["sh"],
                          out.stdout)
            self.assertIn("auth: none\n", out.stdout)

        # Only "--from SENDER" after the address.
        for args in (("a@ex.test", "x@y.test"), ("a@ex.test", "--frm", "x@y.test"),
                     ("a@ex.test", "--from")):
            p = subprocess.run([RELAYCTL, "-f", r.conf_path, "route"] + list(args),
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("route ADDRESS [--from SENDER]", p.stderr)

    def test_check_errors(self):
        conf = os.path.join(self.tmp, "relayd.conf")
        with open(conf, "w") as f:
            f.write("hostname relay.test\nsender-route sales.example.org [127.0.0.6]:25\n"
                    "sender-route @x.test [127.0.0.6]:25\nsender-route @X.test [127.0.0.7]:25\n"
                    "sender-route @y.test [127.0.0.6]:25 tls=none auth=%s\n"
                    % self.auth_file("a", "u", "p"))
        p = subprocess.run([RELAYD, "-n", "-f", conf], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('%s:2: sender-route: bad pattern "sales.example.org"' % conf, p.stderr)
        self.assertIn("%s:4: sender-route: a sender-route for @X.test is already set" % conf,
                      p.stderr)
        self.assertIn("%s:5: sender-route: auth= with tls=none" % conf, p.stderr)

"""Outbound rate limits (issue 12, point 5): `rate=N/PERIOD` on smarthost,
route and sender-route lines, `destination-rate N/PERIOD` for each MX
destination domain. Messages above the rate wait in the queue -- deferred
without an attempt, logged `status=deferred (delivery rate-limited: ...)`
-- and leave when the rate allows: the fake next hop sees them no closer
together than the spacing (period/N), all of them, none bounced, no
attempt counted, no backoff (retry-min is 5m here: a counted deferral
would hold a message for minutes). Real relayd, dnsmasq, aiosmtpd fakes.
"""
import json
import re
import subprocess
import time

from dlv_base import DeliveryCase
from harness import RELAYD, free_port, wait_until

# A transaction starts at its slot; the fake sees its DATA a connection
# and a few commands later. That delay varies by this much at most, even
# on a loaded machine (measured: a few ms idle).
TOL = 0.3
# retry-min 5m: mail deferred as an attempt would not come back within a test.
SLOW_RETRY = "retry-min 5m\nretry-max 1h\noutbound-tls none\n"
RATE_LINE = r"%s: to=<%s>, relay=none, delay=[0-9.]+, dsn=4\.4\.5, status=deferred " \
            r"\(delivery rate-limited: %s; next try in \d+ s\)"


class RateLimit(DeliveryCase):
    BASE_CONF = SLOW_RETRY

    def data_starts(self, mx, n):
        """The monotonic times the fake saw the DATA of its first n messages."""
        mx.wait_messages(n, timeout=60)
        with mx.lock:
            return sorted(start for start, _ in mx.intervals)

    def assert_spaced(self, starts, spacing, what):
        gaps = [round(b - a, 3) for a, b in zip(starts, starts[1:])]
        self.assertTrue(all(g >= spacing - TOL for g in gaps),
                        "%s: arrivals closer than %.1f s: gaps %r" % (what, spacing, gaps))
        return gaps

    def queue(self, r):
        p = r.ctl("queue", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_smarthost_rate_spaces_messages(self):
        """rate=60/m: one message a second. Six sent at once reach the
        smarthost one by one, the last no sooner than 5 s after the
        first; the ones that wait in the queue have no attempt counted."""
        dns = self.dns()
        port = free_port("127.0.0.8")
        sh = self.mx("127.0.0.8", port=port)
        r = self.relayd(dns, "smarthost [127.0.0.8]:%d tls=none rate=60/m\n" % port)
        t0 = time.monotonic()
        qids = [self.send(r, "s@snd.test", ["a%d@ex.test" % i]) for i in range(6)]

        # One waits in the queue: deferred without an attempt, not yet due.
        seen = []

        def waiting():
            for m in self.queue(r):
                for rc in m["recipients"]:
                    if "rate-limited" in rc["last_error"]:
                        seen.append(rc)
                        return True
            return False
        wait_until(waiting, 10, "a recipient waiting for the rate in relayctl queue")
        self.assertEqual(seen[0]["attempts"], 0, seen[0])
        self.assertEqual(seen[0]["state"], "queued", seen[0])
        self.assertEqual(seen[0]["last_enh"], "4.4.5", seen[0])

        starts = self.data_starts(sh, 6)
        self.assert_spaced(starts, 1.0, "smarthost rate=60/m")
        self.assertGreaterEqual(starts[-1] - starts[0], 5.0 - TOL)
        # No backoff taken: the last goes about when the rate allows.
        self.assertLess(starts[-1] - t0, 5.0 + 10.0)
        self.assertEqual(sorted(m.rcpt_tos[0] for m in sh.messages),
                         ["a%d@ex.test" % i for i in range(6)])
        for i, qid in enumerate(qids):
            self.wait_status(r, qid, "a%d@ex.test" % i, "sent")
        log = r.log()
        # The messages above the rate were logged once each as waiting, none as attempts.
        limited = re.findall(RATE_LINE % (r"\S+", r"[^>]+", r"rate=60/m for smarthost"), log)
        self.assertGreaterEqual(len(limited), 2, log[-3000:])
        deferred = re.findall(r"status=deferred \((?!delivery rate-limited)", log)
        self.assertEqual(deferred, [])
        self.assertNotIn("status=bounced", log)

    def test_flush_keeps_the_rate(self):
        """relayctl flush brings the waiting messages back at once; they
        are promised new moments and still leave 2 s apart (rate=30/m)."""
        dns = self.dns()
        port = free_port("127.0.0.8")
        sh = self.mx("127.0.0.8", port=port)
        r = self.relayd(dns, "smarthost [127.0.0.8]:%d tls=none rate=30/m\n" % port)
        qids = [self.send(r, "s@snd.test", ["f%d@ex.test" % i]) for i in range(5)]
        # The last is promised the moment 8 s after the first.
        self.wait_status(r, qids[-1], "f4@ex.test", "deferred")
        mark = len(r.log())
        p = r.ctl("flush")
        self.assertEqual(p.returncode, 0, p.stderr)
        # Back from the queue at once, and sent back again with a new promise.
        r.wait_log(RATE_LINE % (re.escape(qids[-1]), "f4@ex.test", "rate=30/m for smarthost"),
                   start=mark)
        starts = self.data_starts(sh, 5)
        self.assert_spaced(starts, 2.0, "smarthost rate=30/m with a flush")
        # The promises made before the flush were voided, not kept on top
        # of the new ones (that would put the last at 14 s).
        self.assertLess(starts[-1] - starts[0], 8.0 + 3.5, starts)
        for i, qid in enumerate(qids):
            self.wait_status(r, qid, "f%d@ex.test" % i, "sent")

    def test_destination_rate_per_domain(self):
        """destination-rate 2/s: each MX domain has its own spacing of 0.5 s.
        Four messages to each of two domains (one MX host): each domain's
        arrive spaced, the two domains' interleaved, so the whole takes
        about 1.5 s, not 3.5 s."""
        dns = self.dns(mx=[("one.test", "mx.one.test", 10), ("two.test", "mx.two.test", 10)],
                       hosts={"mx.one.test": "127.0.0.2", "mx.two.test": "127.0.0.2"})
        mx = self.mx("127.0.0.2")
        r = self.relayd(dns, "destination-rate 2/s\n")
        # One message with a recipient in each domain: two jobs, one per destination.
        qids = [self.send(r, "s@snd.test", ["a%d@one.test" % i, "b%d@two.test" % i])
                for i in range(4)]
        mx.wait_messages(8, timeout=60)
        with mx.lock:
            by_domain = {"one.test": [], "two.test": []}
            for m, (start, _) in zip(mx.messages, mx.intervals):
                by_domain[m.rcpt_tos[0].split("@")[1]].append(start)
        for domain, starts in by_domain.items():
            self.assertEqual(len(starts), 4, by_domain)
            self.assert_spaced(sorted(starts), 0.5, domain)
            self.assertGreaterEqual(max(starts) - min(starts), 1.5 - TOL)
        # The domains do not wait for each other: both start within the first spacing.
        firsts = [min(s) for s in by_domain.values()]
        self.assertLess(abs(firsts[0] - firsts[1]), 0.5)
        for i, qid in enumerate(qids):
            self.wait_status(r, qid, "a%d@one.test" % i, "sent")
            self.wait_status(r, qid, "b%d@two.test" % i, "sent")
        self.assertNotRegex(r.log(), r"status=deferred \((?!delivery rate-limited)")

    def test_route_and_sender_route_rates(self):
        """rate= on a route and on a sender-route limit their own mail only."""
        dns = self.dns()
        rp, sp, hp = free_port("127.0.0.9"), free_port("127.0.0.6"), free_port("127.0.0.8")
        routed = self.mx("127.0.0.9", port=rp)
        sales = self.mx("127.0.0.6", port=sp)
        sh = self.mx("127.0.0.8", port=hp)
        r = self.relayd(dns, "route routed.test [127.0.0.9]:%d tls=none rate=2/s\n"
                        "sender-route @sales.test [127.0.0.6]:%d rate=120/m tls=none\n"
                        "smarthost [127.0.0.8]:%d tls=none\n" % (rp, sp, hp))
        for i in range(3):
            self.send(r, "x@sales.test", ["a%d@routed.test" % i])
            self.send(r, "x@sales.test", ["b%d@ex.test" % i])
            self.send(r, "y@other.test", ["c%d@ex.test" % i])
        self.assert_spaced(self.data_starts(routed, 3), 0.5, "route rate=2/s")
        self.assert_spaced(self.data_starts(sales, 3), 0.5, "sender-route rate=120/m")
        # The smarthost has no rate: its three go at once.
        starts = self.data_starts(sh, 3)
        self.assertLess(starts[-1] - starts[0], 0.5 + TOL, starts)

    def test_relayctl_route_shows_the_rate(self):
        dns = self.dns(mx=[("ex.test", "mx1.ex.test", 10)], hosts={"mx1.ex.test": "127.0.0.2"})
        r = self.relayd(dns, "destination-rate 30/h\n"
                        "route routed.test [127.0.0.9]:25 tls=none rate=6/m\n"
                        "sender-route @sales.test [127.0.0.6]:25 tls=none rate=2/s\n")
        out = r.ctl("route", "a@ex.test")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("rate: destination-rate 30/h for ex.test: one message every 120.000 s, "
                      "per destination domain; mail above it waits in the queue (not an "
                      "attempt)\n", out.stdout)
        out = r.ctl("route", "a@routed.test")
        self.assertIn("rate: rate=6/m for route routed.test: one message every 10.000 s; ",
                      out.stdout)
        out = r.ctl("route", "a@ex.test", "--from", "x@sales.test")
        self.assertIn("rate: rate=2/s for sender-route @sales.test: one message every "
                      "0.500 s; ", out.stdout)
        r2 = self.relayd(dns, "smarthost [127.0.0.8]:25 tls=none\n"
                         "smarthost [127.0.0.7]:25 tls=none rate=10/m\n")
        out = r2.ctl("route", "a@ex.test")
        # Both smarthosts, one shared rate.
        self.assertEqual(out.stdout.count("rate: rate=10/m for smarthost: one message every "
                                          "6.000 s, shared by all the smarthosts; "), 2,
                         out.stdout)
        r3 = self.relayd(dns)
        self.assertIn("rate: none\n", r3.ctl("route", "a@ex.test").stdout)

    def test_config_errors(self):
        dns = self.dns()
        r = self.relayd(dns, start=False)
        with open(r.conf_path, "a") as f:
            f.write("smarthost [127.0.0.8]:25 rate=6/m\n"
                    "smarthost [127.0.0.7]:25 rate=7/m\n"
                    "route a.test [127.0.0.9]:25 rate=0/s\n"
                    "sender-route @b.test [127.0.0.6]:25 rate=6/d\n"
                    "destination-rate 2000/s\n"
                    "destination-rate fast\n"
                    "route c.test [127.0.0.9]:25 rate=1/s rate=2/s\n")
        p = subprocess.run([RELAYD, "-n", "-f", r.conf_path], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 1, p.stderr)
        lines = r.conf.count("\n")
        c = r.conf_path
        want = [
            '%s:%d: smarthost: rate=7/m differs from the rate=6/m of an earlier smarthost '
            'line: the smarthosts share one rate' % (c, lines + 2),
            '%s:%d: route: "0/s" is not a rate (N/s, N/m or N/h; at most 1000/s)'
            % (c, lines + 3),
            '%s:%d: sender-route: "6/d" is not a rate' % (c, lines + 4),
            '%s:%d: destination-rate: "2000/s" is not a rate' % (c, lines + 5),
            '%s:%d: destination-rate: "fast" is not a rate' % (c, lines + 6),
            '%s:%d: route: unexpected "rate=2/s"' % (c, lines + 7),
        ]
        for w in want:
            self.assertIn(w, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), len(want), p.stderr)

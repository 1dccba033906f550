"""test_metrics.py - `metrics-listen` (issue 14, point 4): the master's
Prometheus endpoint. A scrape is parsed by a real parser
(python3-prometheus-client's text_string_to_metric_families) and its values
move by exactly what the test did: three messages (one sent, one bounced
whose report is then delivered, one deferred) and a relay refusal. The
counters keep their totals when workers are killed and restarted, and the
restarts are counted. Hostile HTTP peers (idle connections beyond the cap,
an oversized request, a silent connection) neither block the master nor
keep the endpoint down.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_metrics
"""
import os
import signal
import socket
import threading
import time
import unittest
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from dlv_base import DeliveryCase
from harness import free_port, wait_until
from intake_util import Client

MX = [("ex.test", "mx.ex.test", 10), ("snd.test", "mx.snd.test", 10)]
HOSTS = {"mx.ex.test": "127.0.0.2", "mx.snd.test": "127.0.0.3"}
# master_metrics.c's limits
HTTP_CONNECTIONS = 16
HTTP_TIMEOUT_S = 10

TYPES = {
    "relayd_connections_in": "counter", "relayd_connections_in_active": "gauge",
    "relayd_tls_in": "counter", "relayd_messages_received": "counter",
    "relayd_messages_rejected": "counter", "relayd_connections_out": "counter",
    "relayd_connect_failures": "counter", "relayd_tls_out": "counter",
    "relayd_recipients_delivered": "counter", "relayd_recipients_deferred": "counter",
    "relayd_recipients_bounced": "counter", "relayd_nexthop_deliveries": "counter",
    "relayd_queue_messages": "gauge", "relayd_queue_recipients": "gauge",
    "relayd_queue_oldest_message_age_seconds": "gauge",
    "relayd_delivery_latency_seconds": "histogram",
    "relayd_worker_restarts": "counter", "relayd_worker_up": "gauge",
}


def scrape(port, timeout=5):
    """{(sample name, frozenset of labels): value} and {family: type}."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=timeout) as resp:
        ctype = resp.headers["Content-Type"]
        text = resp.read().decode()
    if not ctype.startswith("text/plain; version=0.0.4"):
        raise AssertionError("Content-Type %r" % ctype)
    samples, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


class Metrics(DeliveryCase):
    # A deferred message stays deferred for the whole test.
    BASE_CONF = "retry-min 1h\nretry-max 1h\noutbound-tls none\n"

    def start(self):
        dns = self.dns(MX, HOSTS)
        self.mx("127.0.0.2", rcpt={"bad": "550 5.1.1 User unknown",
                                   "later": "451 4.3.0 Try again later"})
        self.snd = self.mx("127.0.0.3")
        self.mport = free_port()
        r = self.relayd(dns, "mynetworks 127.0.0.1/32\nmetrics-listen 127.0.0.1:%d\n"
                        % self.mport)
        # One full session first: intake has then also counted the harness's
        # start-up probe, and the baseline no longer moves.
        with Client(r.port) as c:
            self.assertEqual(c.greeting().code, 220)
            self.assertEqual(c.cmd("QUIT").code, 221)
        wait_until(lambda: (value(self.try_scrape(), "relayd_connections_in_total") or 0) >= 2,
                   10, "a scrape with the warm-up connection counted")
        return r

    def try_scrape(self, timeout=5):
        try:
            return scrape(self.mport, timeout)[0]
        except (OSError, urllib.error.URLError):
            return {}

    def test_values_match_what_happened_and_survive_restarts(self):
        r = self.start()
        samples, types = scrape(self.mport)
        self.assertEqual(types, TYPES)
        for role in ("intake", "queue", "delivery"):
            self.assertEqual(value(samples, "relayd_worker_up", role=role), 1.0)
        self.assertEqual(value(samples, "relayd_messages_received_total"), 0)
        before_conn = value(samples, "relayd_connections_in_total")

        q_sent = self.send(r, "s@snd.test", ["ok@ex.test"])
        q_bounced = self.send(r, "s@snd.test", ["bad@ex.test"])
        q_deferred = self.send(r, "s@snd.test", ["later@ex.test"])
        with Client(r.port, source="127.0.0.9") as c:
            c.greeting()
            c.ehlo()
            self.assertEqual(c.cmd("MAIL FROM:<s@snd.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<x@ex.test>").code, 554)
            c.cmd("QUIT")
        self.wait_status(r, q_sent, "ok@ex.test", "sent")
        self.wait_status(r, q_bounced, "bad@ex.test", "bounced")
        self.wait_status(r, q_deferred, "later@ex.test", "deferred")
        dsn = r.wait_log(r"%s: sender non-delivery notification: ([0-9A-F]+)"
                         % q_bounced).group(1)
        self.wait_status(r, dsn, "s@snd.test", "sent")
        self.snd.wait_messages(1)

        want = {
            ("relayd_messages_received_total", ()): 3,
            ("relayd_messages_rejected_total", ()): 1,
            ("relayd_connections_in_total", ()): before_conn + 4,
            # the message to ok@ and the report to the sender
            ("relayd_recipients_delivered_total", ()): 2,
            ("relayd_recipients_bounced_total", ()): 1,
            ("relayd_recipients_deferred_total", ()): 1,
            ("relayd_queue_messages", ()): 1,
            ("relayd_queue_recipients", (("state", "deferred"),)): 1,
            ("relayd_queue_recipients", (("state", "queued"),)): 0,
            # arrival to final outcome: two sent, one bounced
            ("relayd_delivery_latency_seconds_count", ()): 3,
            ("relayd_delivery_latency_seconds_bucket", (("le", "+Inf"),)): 3,
            ("relayd_nexthop_deliveries_total", (("nexthop", "mx:ex.test"), ("status", "sent"))): 1,
            ("relayd_nexthop_deliveries_total",
             (("nexthop", "mx:ex.test"), ("status", "bounced"))): 1,
            ("relayd_nexthop_deliveries_total",
             (("nexthop", "mx:ex.test"), ("status", "deferred"))): 1,
            ("relayd_nexthop_deliveries_total", (("nexthop", "mx:snd.test"), ("status", "sent"))): 1,
        }

        def current():
            s = self.try_scrape()
            return {k: s.get((k[0], frozenset(k[1]))) for k in want}
        wait_until(lambda: current() == want, 20,
                   lambda: "scraped %r, expected %r" % (current(), want))
        samples, _ = scrape(self.mport)
        self.assertGreaterEqual(value(samples, "relayd_connections_out_total"), 2)
        # Every outcome at some next hop, and no next hop beyond them.
        hops = {k for k in samples if k[0] == "relayd_nexthop_deliveries_total"}
        self.assertEqual(len(hops), 4, hops)
        # Delivered within seconds: all three in the first buckets.
        self.assertEqual(value(samples, "relayd_delivery_latency_seconds_bucket", le="30"), 3)
        age = value(samples, "relayd_queue_oldest_message_age_seconds")
        self.assertTrue(0 <= age < 120, age)

        # Killed workers: the totals stay, the restarts are counted.
        r.allow_log(r"master: (queue|intake|delivery) worker killed by signal 9; restarting")
        counters = {k: v for k, v in samples.items() if k[0].endswith("_total")
                    or k[0].startswith("relayd_delivery_latency_seconds")}
        for role in ("queue", "intake", "delivery"):
            old = r.pids()[role]
            os.kill(old, signal.SIGKILL)
            wait_until(lambda: r.pids().get(role) not in (None, old), 15,
                       "the %s worker restarted" % role)

        def restarted():
            s = self.try_scrape()
            return all(value(s, "relayd_worker_restarts_total", role=x) == 1
                       and value(s, "relayd_worker_up", role=x) == 1
                       for x in ("queue", "intake", "delivery")) and \
                value(s, "relayd_queue_messages") is not None and s
        after = wait_until(restarted, 15, lambda: "restarts counted: %r" % self.try_scrape())
        for k, v in counters.items():
            if k[0] != "relayd_worker_restarts_total":
                self.assertEqual(after.get(k), v, k)
        self.assertEqual(value(after, "relayd_queue_messages"), 1)

        # New work adds to the kept totals.
        self.send(r, "s@snd.test", ["ok2@ex.test"])
        wait_until(lambda: value(self.try_scrape(), "relayd_messages_received_total") == 4, 20,
                   lambda: "received 4: %r" % self.try_scrape())

    def test_hostile_peers(self):
        r = self.start()
        # Idle connections fill the cap: a scrape beyond it is not served
        # while they stay (MHD closes it at once, or leaves it in the listen
        # backlog when it saw the cap first), the master still serves
        # relayctl and intake, and once they leave, scrapes are answered.
        idle = [socket.create_connection(("127.0.0.1", self.mport), timeout=5)
                for _ in range(HTTP_CONNECTIONS)]
        result = []
        waiting = threading.Thread(
            target=lambda: result.append((self.try_scrape(timeout=20), time.monotonic())))
        try:
            time.sleep(0.5)
            waiting.start()
            time.sleep(1.5)
            st = r.ctl("status", timeout=5)
            self.assertEqual(st.returncode, 0, st.stderr)
            with Client(r.port) as c:
                self.assertEqual(c.greeting().code, 220)
        finally:
            closed = time.monotonic()
            for s in idle:
                s.close()
            waiting.join(25)
        self.assertEqual(len(result), 1)
        got, when = result[0]
        if got:
            self.assertGreaterEqual(when, closed, "a scrape served beyond the connection cap")
            self.assertIsNotNone(value(got, "relayd_queue_messages"), got)
        wait_until(lambda: value(self.try_scrape(), "relayd_queue_messages") is not None, 10,
                   "scrapes answered once the idle connections left")

        # A request larger than the per connection memory gets an error, not
        # an unbounded buffer.
        with socket.create_connection(("127.0.0.1", self.mport), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n")
            head = s.recv(4096)
        self.assertRegex(head, rb"^HTTP/1\.[01] 4(13|14|31) ")
        self.assertNotEqual(self.try_scrape(), {})

        # Wrong method, wrong path.
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % self.mport, data=b"x",
                                     method="POST")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(cm.exception.code, 405)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen("http://127.0.0.1:%d/" % self.mport, timeout=5)
        self.assertEqual(cm.exception.code, 404)

        # A peer that sends half a request and goes silent is closed after
        # the idle timeout.
        with socket.create_connection(("127.0.0.1", self.mport), timeout=HTTP_TIMEOUT_S + 10) as s:
            s.sendall(b"GET /metr")
            t0 = time.monotonic()
            data = s.recv(4096)
            took = time.monotonic() - t0
        self.assertEqual(data, b"")
        self.assertGreater(took, HTTP_TIMEOUT_S - 2)
        self.assertLess(took, HTTP_TIMEOUT_S + 8)


if __name__ == "__main__":
    unittest.main()

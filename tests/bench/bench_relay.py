#!/usr/bin/python3
"""bench_relay.py - end-to-end throughput of a whole relayd: CLIENTS client
connections submit messages over SMTP (each waits for its 250, which comes
only once the message is on disk), relayd relays them to a fake MX
(aiosmtpd) as smarthost. Prints the submission rate, the delivery rate and
the intake/queue/delivery RSS at the end.

Usage: bench_relay.py [MESSAGES] [CLIENTS] [SIZE]   (defaults 2000 8 4096)
With DKIM=rsa or DKIM=ed25519 in the environment, every message is signed
(dkim-sign lan.test with a fresh RSA-2048 or Ed25519 key): the signing cost.
"""
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from fakes.dlv_mx import FakeMX  # noqa: E402
from harness import Relayd, free_port  # noqa: E402


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def client(port, n, body, errors):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
            c.ehlo("bench.test")
            for _ in range(n):
                c.sendmail("bench@lan.test", ["rcpt@remote.example"], body)
    except Exception as e:  # noqa: BLE001 - reported below
        errors.append(repr(e))


def main():
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
    body = ("From: bench@lan.test\r\nSubject: bench\r\n\r\n" +
            ("x" * 76 + "\r\n") * (size // 78 + 1))[:size].encode()
    mx = FakeMX("127.0.0.1", free_port())
    conf = "smarthost [127.0.0.1]:%d tls=none\nmax-connections-per-ip 200\n" % mx.port
    keydir = tempfile.TemporaryDirectory()
    kind = os.environ.get("DKIM")
    if kind:
        key = os.path.join(keydir.name, "key.pem")
        algo = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] if kind == "rsa" \
            else ["-algorithm", "ed25519"]
        subprocess.run(["openssl", "genpkey", "-out", key] + algo, check=True,
                       stderr=subprocess.DEVNULL, timeout=60)
        conf += "dkim-sign lan.test bench %s\n" % key
        print("signing every message: %s" % kind)
    try:
        with Relayd(conf_extra=conf) as r:
            errors = []
            per = total // clients
            threads = [threading.Thread(target=client, args=(r.port, per, body, errors))
                       for _ in range(clients)]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=600)
            t_sub = time.monotonic() - t0
            mx.wait_messages(per * clients, timeout=600)
            t_all = time.monotonic() - t0
            pids = r.pids()
            print("messages %d, clients %d, size %d bytes" % (per * clients, clients, size))
            print("submitted (250 after fsync): %.0f msg/s (%.2f s)" % (per * clients / t_sub, t_sub))
            print("delivered to the MX:         %.0f msg/s (%.2f s)" % (per * clients / t_all, t_all))
            print("RSS kB: " + ", ".join("%s %d" % (k, rss_kb(v)) for k, v in sorted(pids.items())))
            if errors:
                print("client errors: %d, first: %s" % (len(errors), errors[0]))
                return 1
    finally:
        mx.stop()
        keydir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

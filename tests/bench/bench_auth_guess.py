#!/usr/bin/python3
"""bench_auth_guess.py - a normal client's EHLO latency while 8 threads
guess AUTH passwords (issue 9, point 6).

Starts relayd (intake and queue) with the integration harness: STARTTLS
with an ECDSA certificate (cheap handshakes, so that the figures show
password hashing, not TLS), an auth-users file whose hashes are
`openssl passwd -6` (sha512crypt, 5000 rounds). Then:

1. idle: one client on a persistent connection sends `EHLO` N times (a
   short pause between them) and times each reply;
2. under guessing: the same while 8 threads, each from its own loopback
   address, connect, STARTTLS and send wrong AUTH PLAIN passwords as fast
   as relayd answers (reconnecting when relayd closes after three).

Prints, for both phases, the median and the 99th percentile of the EHLO
round trip in milliseconds, and how many guesses relayd answered. When
the relayd under test knows `auth-fail-limit`, it is set high enough that
the guessers are never throttled: the figure is about the event loop, not
the throttle.

Run:  /usr/bin/python3 tests/bench/bench_auth_guess.py [--samples N] [--bin DIR]
      (--bin: another build's bin directory, e.g. of the code before a change)
"""
import argparse
import base64
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

GUESSERS = 8
USER, PASSWORD = "alice", "the-right-password"


def read_reply(sock):
    """One (possibly multi-line) reply: (code, raw bytes)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed: %r" % data)
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) >= 2 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return int(lines[-2][:3]), data


def tls_client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_files(d):
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    h = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=PASSWORD + "\n",
                       capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    users = os.path.join(d, "users")
    with open(users, "w") as f:
        f.write("%s:%s\n" % (USER, h))
    return cert, key, users


def knows_directive(relayd_bin, conf_text):
    """Whether this relayd accepts conf_text (relayd -n)."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write(conf_text)
        f.flush()
        p = subprocess.run([relayd_bin, "-n", "-f", f.name], capture_output=True, timeout=30)
        return p.returncode == 0


class Guesser(threading.Thread):
    def __init__(self, port, source, stop):
        super().__init__(daemon=True)
        self.port, self.source, self.stop = port, source, stop
        self.answered = 0
        self.error = None

    def session(self, ctx):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30,
                                     source_address=(self.source, 0))
        try:
            read_reply(s)
            s.sendall(b"EHLO guesser.example\r\n")
            read_reply(s)
            s.sendall(b"STARTTLS\r\n")
            if read_reply(s)[0] != 220:
                raise RuntimeError("STARTTLS refused")
            s = ctx.wrap_socket(s)
            s.sendall(b"EHLO guesser.example\r\n")
            read_reply(s)
            n = 0
            while not self.stop.is_set():
                n += 1
                cred = base64.b64encode(b"\0%s\0wrong-%d" % (USER.encode(), n))
                s.sendall(b"AUTH PLAIN " + cred + b"\r\n")
                code, _ = read_reply(s)
                self.answered += 1
                if code != 535:
                    return  # 421 after three failures (or 454): a new connection
        finally:
            s.close()

    def run(self):
        ctx = tls_client_ctx()
        while not self.stop.is_set():
            try:
                self.session(ctx)
            except (ConnectionError, ssl.SSLError, OSError) as e:
                if self.stop.is_set():
                    return
                self.error = e
                time.sleep(0.01)


def ehlo_latencies(port, samples, pause):
    """Milliseconds of `samples` EHLO round trips on one connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    out = []
    try:
        read_reply(s)
        for i in range(samples):
            t0 = time.perf_counter()
            s.sendall(b"EHLO normal.example\r\n")
            code, _ = read_reply(s)
            out.append((time.perf_counter() - t0) * 1000.0)
            if code != 250:
                raise RuntimeError("EHLO got %d" % code)
            time.sleep(pause)
        s.sendall(b"QUIT\r\n")
    finally:
        s.close()
    return out


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


def report(name, xs, extra=""):
    print("%-16s EHLO latency: median %.3f ms, p99 %.3f ms (n=%d)%s"
          % (name, statistics.median(xs), p99(xs), len(xs), extra))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--pause", type=float, default=0.005, help="seconds between EHLOs")
    ap.add_argument("--bin", default=None, help="bin directory of the relayd to measure")
    args = ap.parse_args()
    if args.bin:
        os.environ["BIN"] = os.path.abspath(args.bin)
    import harness  # noqa: E402  (reads BIN)

    with tempfile.TemporaryDirectory(prefix="bench-auth-") as d:
        cert, key, users = make_files(d)
        conf = ("tls-cert %s\ntls-key %s\nauth-users %s\nmynetworks 10.0.0.0/8\n"
                "max-connections-per-ip 100\nsmtp-timeout 5m\n" % (cert, key, users))
        probe = "state-dir %s\n%s" % (d, conf)
        if knows_directive(harness.RELAYD, probe + "auth-fail-limit 100000\n"):
            conf += "auth-fail-limit 100000\n"
            print("relayd %s: auth-fail-limit 100000 (guessers not throttled)" % harness.RELAYD)
        else:
            print("relayd %s: no auth-fail-limit directive (code before the change)"
                  % harness.RELAYD)
        with harness.Relayd(conf_extra=conf, roles="intake,queue") as r:
            idle = ehlo_latencies(r.port, args.samples, args.pause)
            stop = threading.Event()
            gs = [Guesser(r.port, "127.0.8.%d" % (i + 1), stop) for i in range(GUESSERS)]
            for g in gs:
                g.start()
            time.sleep(1.0)  # let the guessing reach its pace
            t0 = time.monotonic()
            before = sum(g.answered for g in gs)
            try:
                busy = ehlo_latencies(r.port, args.samples, args.pause)
            finally:
                guesses = sum(g.answered for g in gs) - before
                elapsed = time.monotonic() - t0
                stop.set()
                for g in gs:
                    g.join(timeout=30)
            errors = [g.error for g in gs if g.error is not None]
        report("idle", idle)
        report("8 guessers", busy, ", %d guesses answered in %.1f s (%.0f/s)"
               % (guesses, elapsed, guesses / elapsed))
        if errors:
            print("guesser errors (last of each): %s" % "; ".join(map(str, errors)))
        if guesses == 0:
            print("no guess was answered: the figures under guessing mean nothing")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

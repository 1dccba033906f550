#!/usr/bin/python3
"""bench_flush_outage.py - issue 11, point 2: N messages (default 30,000)
queued for a smarthost that is down; it comes back; `relayctl flush`; the
seconds until every message is delivered. The target is under 30 s.

relayd runs as an admin would run it (default retry-min, concurrency and
verbosity, `-d` for the log); the messages are queued by many pipelining
SMTP clients at once; the smarthost is a small asyncio SMTP sink that
counts what it accepts (aiosmtpd would be the bottleneck here).

Usage: bench_flush_outage.py [N] [CLIENTS]
Prints the queueing time, how the outage was handled (refused attempts,
suspended deferrals) and the flush figure.
"""
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import RELAYCTL, RELAYD, free_port, wait_port  # noqa: E402


class Sink:
    """An SMTP server on host:port (started later) that accepts everything
    and counts the messages; no PIPELINING offered, CRLF.CRLF ends DATA."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.count = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = None

    async def _session(self, reader, writer):
        writer.write(b"220 sink ESMTP\r\n")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-sink\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go\r\n")
                    await writer.drain()
                    await reader.readuntil(b"\r\n.\r\n")
                    self.count += 1
                    writer.write(b"250 2.0.0 Ok\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 2.0.0 Bye\r\n")
                    break
                else:
                    writer.write(b"250 2.0.0 Ok\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()

    def start(self):
        async def go():
            self.server = await asyncio.start_server(self._session, self.host, self.port,
                                                     reuse_address=True, backlog=512)
        asyncio.run_coroutine_threadsafe(go(), self.loop).result(10)

    def stop(self):
        async def go():
            if self.server:
                self.server.close()
        asyncio.run_coroutine_threadsafe(go(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


async def client(port, rcpts, counter):
    """Sends one message per recipient over one session, MAIL/RCPT/DATA pipelined."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply():
        while True:
            line = await reader.readline()
            if not line:
                raise SystemExit("relayd closed the connection")
            if line[3:4] != b"-":
                return line

    await reply()
    writer.write(b"EHLO bench.test\r\n")
    await reply()
    for rc in rcpts:
        writer.write(b"MAIL FROM:<s@snd.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % rc.encode())
        for want in (b"250", b"250", b"354"):
            line = await reply()
            if not line.startswith(want):
                raise SystemExit("unexpected reply %r" % line)
        writer.write(b"Subject: outage\r\n\r\nfor %s\r\n.\r\n" % rc.encode())
        line = await reply()
        if not line.startswith(b"250"):
            raise SystemExit("message refused: %r" % line)
        counter[0] += 1
    writer.write(b"QUIT\r\n")
    await reply()
    writer.close()


async def submit(port, n, clients):
    counter = [0]
    per = [["u%d@ex.test" % i for i in range(k, n, clients)] for k in range(clients)]
    await asyncio.gather(*(client(port, p, counter) for p in per if p))
    return counter[0]


def cpu_by_role(master):
    """{role: CPU seconds used so far} of the master's worker processes."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                args = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[1]) == master and args.startswith("relayd: "):
            out[args.split()[1]] = (int(fields[11]) + int(fields[12])) / tick
    return out


def ctl(conf, *args):
    p = subprocess.run([RELAYCTL, "-f", conf] + list(args), capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise SystemExit("relayctl %s: %s" % (" ".join(args), p.stderr))
    return p.stdout


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30000
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    tmp = tempfile.mkdtemp(prefix="bench-flush-")
    port, sh_port = free_port(), free_port("127.0.0.2")
    conf = os.path.join(tmp, "relayd.conf")
    log = os.path.join(tmp, "relayd.log")
    os.mkdir(os.path.join(tmp, "state"))
    with open(conf, "w") as f:
        f.write("hostname relayd.test\nstate-dir %s/state\nlisten 127.0.0.1:%d smtp\n"
                "smarthost [127.0.0.2]:%d\noutbound-tls none\nmax-connections-per-ip %d\n"
                % (tmp, port, sh_port, clients + 10))
    sink = Sink("127.0.0.2", sh_port)
    logf = open(log, "wb")
    proc = subprocess.Popen([RELAYD, "-d", "-f", conf], stdout=logf, stderr=logf,
                            start_new_session=True)
    try:
        wait_port("127.0.0.1", port, 10)
        t0 = time.monotonic()
        sent = asyncio.run(submit(port, n, clients))
        queued_in = time.monotonic() - t0
        # Let delivery see every message once (refused, or suspended without connecting).
        end = time.monotonic() + 120
        while time.monotonic() < end:
            text = open(log, encoding="utf-8", errors="replace").read()
            done = len(re.findall(r"status=deferred", text))
            if done >= n:
                break
            time.sleep(0.5)
        refused = len(re.findall(r"status=deferred \(connect to", text))
        suspended = len(re.findall(r"status=deferred \(delivery temporarily suspended", text))
        attempts = sum(r["attempts"] for m in json.loads(ctl(conf, "queue", "--json"))
                       for r in m["recipients"])
        sink.start()
        cpu0 = cpu_by_role(proc.pid)
        own0 = sum(os.times()[:2])
        t1 = time.monotonic()
        ctl(conf, "flush")
        end = t1 + 600
        while sink.count < n and time.monotonic() < end:
            time.sleep(0.05)
        took = time.monotonic() - t1
        cpu1 = cpu_by_role(proc.pid)
        own = sum(os.times()[:2]) - own0
        print("queued %d messages with %d clients in %.1f s (%.0f/s)" % (sent, clients, queued_in,
                                                                      sent / queued_in))
        print("outage: %d deferrals after a refused connection, %d suspended without "
              "connecting; attempts counted in the queue: %d" % (refused, suspended, attempts))
        if sink.count < n:
            print("FAILED: only %d of %d delivered within %.0f s of relayctl flush"
                  % (sink.count, n, took))
            sys.exit(1)
        print("relayctl flush -> all %d delivered in %.1f s (%.0f msg/s)" % (n, took, n / took))
        print("CPU seconds during the flush: " + ", ".join(
            "%s %.1f" % (role, cpu1[role] - cpu0.get(role, 0)) for role in sorted(cpu1))
            + "; the sink %.1f" % own)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        logf.close()
        sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

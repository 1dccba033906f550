"""test_intake_backpressure.py - bounded memory in intake (issue 9, point 4):
a client that pipelines megabytes of commands and never reads its replies
costs intake almost nothing and is dropped at smtp-timeout; a client that
does read gets every reply, in order (reading resumes from the drain); and
intake out of descriptors (EMFILE) pauses accepting with one log line a
second instead of spinning, and serves again once connections close.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_intake_backpressure
"""
import os
import resource
import socket
import threading
import time
import unittest

from harness import proc_kb
from intake_util import Client, ReplyAsserts, relayd

TIMEOUT_S = 3  # smtp-timeout in these tests (the config's minimum is 1 s)
# ASan's quarantine keeps freed buffers resident (make sanitize): there the
# peak RSS says nothing about intake, and its bound is not checked.
RSS_MEANINGFUL = not os.environ.get("SANITIZE_LOG_DIR")


def flood_without_reading(port, payload, limit, give_up):
    """Sends payload again and again on one connection and never reads.
    Returns (bytes the kernel took, monotonic time of the last progress,
    monotonic time the server dropped us or None)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(0.5)
    sent, last, dropped = 0, time.monotonic(), None
    chunk = payload * (65536 // len(payload))
    try:
        while sent < limit and time.monotonic() < give_up:
            try:
                n = s.send(chunk)
            except (socket.timeout, TimeoutError):
                continue
            except (BrokenPipeError, ConnectionResetError):
                dropped = time.monotonic()
                break
            sent += n
            last = time.monotonic()
        if dropped is None:
            # Everything went out: wait (still not reading) for the drop.
            s.settimeout(0.2)
            while time.monotonic() < give_up:
                try:
                    s.send(b"NOOP\r\n")
                    time.sleep(0.2)
                except (socket.timeout, TimeoutError):
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    dropped = time.monotonic()
                    break
    finally:
        s.close()
    return sent, last, dropped


class NoReadClient(ReplyAsserts, unittest.TestCase):
    def flood(self, payload):
        with relayd("smtp-timeout %ds\n" % TIMEOUT_S) as r:
            pid = r.pids()["intake"]
            # One ordinary session first, so that the baseline is a warm intake.
            with Client(r.port) as c:
                self.assertReply(c.greeting(), 220)
                self.assertReply(c.ehlo(), 250)
                self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
            hwm0 = proc_kb(pid, "VmHWM")
            start = time.monotonic()
            sent, last, dropped = flood_without_reading(r.port, payload, 32 << 20,
                                                        start + TIMEOUT_S + 25)
            grew = proc_kb(pid, "VmHWM") - hwm0
            self.assertIsNotNone(dropped, "a client that never reads was not dropped "
                                 "(sent %d bytes)" % sent)
            if RSS_MEANINGFUL:
                self.assertLess(grew, 1024, "intake's peak RSS grew by %d kB for %d bytes "
                                "pipelined without reading" % (grew, sent))
            # Dropped at smtp-timeout after intake stopped reading it: not before,
            # and not much later. The client stalls right after intake stops.
            stalled = dropped - last
            self.assertGreater(stalled, TIMEOUT_S - 1.0, "dropped %.1f s after the stall" % stalled)
            self.assertLess(stalled, TIMEOUT_S + 5.0, "dropped %.1f s after the stall" % stalled)
            r.wait_log(r"intake: timeout from \[127\.0\.0\.1\]")
            # and intake still serves others
            with Client(r.port) as c:
                self.assertReply(c.greeting(), 220)
                self.assertReply(c.ehlo(), 250)
            return sent

    def test_pipelined_ehlo_never_read(self):
        self.flood(b"EHLO x\r\n")

    def test_pipelined_noop_never_read(self):
        self.flood(b"EHLO x\r\nNOOP\r\n")


class SlowReader(ReplyAsserts, unittest.TestCase):
    def test_every_reply_arrives_in_order(self):
        """Intake stops taking commands while its output is full, and goes on
        from the drain: a pipelining client that reads late still gets every
        reply, in order, and intake holds only a little of them at a time."""
        n = 100000  # EHLO replies: about 15 MB, more than the socket buffers take
        with relayd("smtp-timeout 30s\n") as r:
            pid = r.pids()["intake"]
            hwm0 = proc_kb(pid, "VmHWM")
            s = socket.socket()
            self.addCleanup(s.close)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.settimeout(30)
            s.connect(("127.0.0.1", r.port))
            payload = b"".join(b"EHLO c%d.example\r\n" % i for i in range(n)) + b"QUIT\r\n"
            sender = threading.Thread(target=s.sendall, args=(payload,))
            sender.start()
            data = b""
            try:
                time.sleep(1.0)  # the output backs up before we read
                s.settimeout(5)
                while True:
                    try:
                        chunk = s.recv(65536)
                    except (socket.timeout, TimeoutError):
                        break
                    if not chunk:
                        break
                    data += chunk
            finally:
                sender.join(30)
            grew = proc_kb(pid, "VmHWM") - hwm0
            lines = data.split(b"\r\n")
            self.assertEqual(lines[-1], b"", "the output ends in the middle of a line")
            self.assertTrue(lines[0].startswith(b"220 "), lines[0])
            self.assertTrue(lines[-2].startswith(b"221 "), lines[-2])
            ends = [x for x in lines[1:-2] if x.startswith(b"250 ")]
            self.assertEqual(len(ends), n, "%d EHLO replies for %d EHLO" % (len(ends), n))
            self.assertTrue(all(x == b"250 DSN" for x in ends),
                            [x for x in ends if x != b"250 DSN"][:3])
            if RSS_MEANINGFUL:
                self.assertLess(grew, 1024, "intake's peak RSS grew by %d kB" % grew)


def intake_cpu(pid):
    """utime + stime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


class OutOfDescriptors(ReplyAsserts, unittest.TestCase):
    FDS = 48

    def test_emfile_pauses_accepting(self):
        with relayd("max-connections-per-ip 1000\nsmtp-timeout 60s\n") as r:
            pid = r.pids()["intake"]
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (self.FDS, self.FDS))
            held, waiting = [], []
            try:
                # More connections than intake has descriptors: the rest wait
                # in the listen backlog.
                for _ in range(self.FDS + 20):
                    s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
                    s.settimeout(0.05)
                    held.append(s)
                deadline = time.monotonic() + 10
                while not r.log().count("intake: accept: ") and time.monotonic() < deadline:
                    time.sleep(0.1)
                self.assertIn("intake: accept: Too many open files", r.log())
                lines0 = r.log().count("intake: accept: ")
                cpu0, t0 = intake_cpu(pid), time.monotonic()
                time.sleep(3.0)
                cpu, took = intake_cpu(pid) - cpu0, time.monotonic() - t0
                lines = r.log().count("intake: accept: ") - lines0
                self.assertLessEqual(lines, 2 * took + 2, "%d accept lines in %.1f s" % (lines, took))
                self.assertLess(cpu, 0.3 * took, "intake used %.2f s of CPU in %.1f s" % (cpu, took))
                # Who was greeted, who waits.
                for s in held:
                    try:
                        (waiting if not s.recv(4096).startswith(b"220 ") else []).append(s)
                    except (socket.timeout, TimeoutError):
                        waiting.append(s)
                greeted = [s for s in held if s not in waiting]
                self.assertTrue(greeted, "nobody was served")
                self.assertTrue(waiting, "every connection was served with %d fds" % self.FDS)
                # Descriptors come free: the waiting ones are served.
                for s in greeted:
                    s.close()
                end = time.monotonic() + 10
                served = 0
                for s in waiting:
                    s.settimeout(max(0.1, end - time.monotonic()))
                    try:
                        if s.recv(4096).startswith(b"220 "):
                            served += 1
                    except (socket.timeout, TimeoutError, ConnectionError):
                        pass
                self.assertEqual(served, len(waiting), "%d of %d waiting clients served"
                                 % (served, len(waiting)))
            finally:
                for s in held:
                    s.close()


if __name__ == "__main__":
    unittest.main()

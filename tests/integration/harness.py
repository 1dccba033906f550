"""harness.py - start a real relayd for an integration test.

Usage:
    from harness import Relayd, free_port, make_cert
    with Relayd(conf_extra="max-recipients 3\n") as r:
        smtplib.SMTP("127.0.0.1", r.port)
        r.wait_log(r"from=<a@b>")
        r.ctl("queue", "--json")

Relayd(conf_extra="", listens=None, roles=None, start=True)
    conf_extra  directives appended to the generated config
    listens     list of (mode, port-or-None) for `listen` lines; default
                [("smtp", None)]; a None port gets a free loopback port
    roles       e.g. "queue" or "intake,queue": passed as `-X roles` so only
                those workers run (tests of one worker)
    r.port      the first listen port; r.ports[mode] the first of that mode
    r.dir       a temp dir, removed at stop; r.state_dir inside it
    r.conf_path the config file
    r.log()     relayd's stderr so far (all processes), r.wait_log(regex)
    r.ctl(*args, timeout=10) -> subprocess.CompletedProcess of relayctl
    r.pids()    {role: pid} from ps (master, intake, queue, delivery)
    r.stop()    SIGTERM, wait up to 10 s, SIGKILL leftovers; returns the
                master's exit code
Every test should use the context manager so the daemon stops even when
the test fails.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(TOP, os.environ.get("BIN", "bin"))
RELAYD = os.path.join(BIN, "relayd")
RELAYCTL = os.path.join(BIN, "relayctl")


def free_port(host="127.0.0.1"):
    """A TCP port on host that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_udp_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=10.0):
    """Waits until host:port accepts a TCP connection."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("nothing listens on %s:%d" % (host, port))


def make_cert(directory, cn="localhost", name="cert"):
    """A self-signed certificate for cn (also as a SAN); returns
    (cert_path, key_path). The certificate is also its own CA file."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + cn,
         "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1" % cn],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=60)
    return cert, key


# gcc's libubsan writes to stderr even when ASan's log_path is set (make
# sanitize): runtime errors in relayd's log or relayctl's stderr are copied to
# SANITIZE_LOG_DIR so that tests/run.sh fails the run instead of losing them.
_SAN_REPORT = re.compile(r"runtime error:|ERROR: \w+Sanitizer|SUMMARY: \w+Sanitizer")


def keep_sanitizer_report(text, what):
    """Saves text from its first sanitizer line on when make sanitize runs."""
    d = os.environ.get("SANITIZE_LOG_DIR")
    m = _SAN_REPORT.search(text) if d else None
    if m is None:
        return
    start = text.rfind("\n", 0, m.start()) + 1
    fd, _ = tempfile.mkstemp(prefix="harness-%s." % what, dir=d)
    with os.fdopen(fd, "w") as f:
        f.write(text[start:start + 20000])


def ps_roles():
    """{pid: args} of every relayd process on the machine."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,args="], capture_output=True,
                         text=True, timeout=10).stdout
    procs = {}
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if args.startswith("relayd: "):
            procs[int(pid)] = args.strip()
    return procs


class Relayd:
    def __init__(self, conf_extra="", listens=None, roles=None, start=True,
                 hostname="relayd.test"):
        self.dir = tempfile.mkdtemp(prefix="relayd-test-")
        self.state_dir = os.path.join(self.dir, "state")
        os.mkdir(self.state_dir)
        self.conf_path = os.path.join(self.dir, "relayd.conf")
        self.log_path = os.path.join(self.dir, "relayd.log")
        self.roles = roles
        self.ports = {}
        lines = ["hostname %s" % hostname, "state-dir %s" % self.state_dir]
        for mode, port in (listens or [("smtp", None)]):
            port = port or free_port()
            self.ports.setdefault(mode, port)
            lines.append("listen 127.0.0.1:%d %s" % (port, mode))
            if not hasattr(self, "port"):
                self.port = port
        self.conf = "\n".join(lines) + "\n" + conf_extra
        with open(self.conf_path, "w") as f:
            f.write(self.conf)
        self.proc = None
        self._logf = None
        if start:
            self.start()

    def start(self):
        args = [RELAYD, "-d", "-v", "-f", self.conf_path]
        if self.roles:
            args += ["-X", self.roles]
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir)
        try:
            end = time.monotonic() + 15
            sock = os.path.join(self.state_dir, "control.sock")
            while not os.path.exists(sock):
                if self.proc.poll() is not None:
                    raise RuntimeError("relayd exited %d:\n%s" % (self.proc.returncode, self.log()))
                if time.monotonic() > end:
                    raise TimeoutError("relayd did not start:\n" + self.log())
                time.sleep(0.05)
            if self.roles is None or "intake" in self.roles:
                wait_port("127.0.0.1", self.port)
        except BaseException:
            self.stop()
            raise
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, regex, timeout=10.0, start=0):
        """Waits for regex in the log (from character offset start);
        returns the match or raises AssertionError with the log."""
        end = time.monotonic() + timeout
        pat = re.compile(regex)
        while True:
            m = pat.search(self.log(), start)
            if m:
                return m
            if time.monotonic() > end:
                raise AssertionError("log has no %r after %.0fs:\n%s" % (regex, timeout, self.log()[-4000:]))
            time.sleep(0.05)

    def ctl(self, *args, timeout=10):
        p = subprocess.run([RELAYCTL, "-f", self.conf_path] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        keep_sanitizer_report(p.stderr, "relayctl")
        return p

    def pids(self):
        """{role: pid} of this instance's processes (children of our master)."""
        out = {}
        if self.proc is None or self.proc.poll() is not None:
            return out
        master = self.proc.pid
        for pid, args in ps_roles().items():
            role = args.split()[1]
            if pid == master:
                out["master"] = pid
                continue
            try:
                with open("/proc/%d/stat" % pid) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == master:
                out[role] = pid
        return out

    def stop(self):
        rc = None
        if self.proc is not None and self.proc.poll() is None:
            children = [p for r, p in self.pids().items() if r != "master"]
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait(timeout=5)
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        elif self.proc is not None:
            rc = self.proc.returncode
        if self._logf:
            self._logf.close()
            self._logf = None
            keep_sanitizer_report(self.log(), "relayd")
        return rc

    def cleanup(self):
        self.stop()
        if os.environ.get("KEEP_TEST_DIRS"):
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

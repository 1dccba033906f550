"""harness.py - start a real relayd for an integration test, and stop it
checking that it ran and stopped cleanly.

Usage:
    from harness import Relayd, free_port, make_cert
    with Relayd(conf_extra="max-recipients 3\n") as r:
        smtplib.SMTP("127.0.0.1", r.port)
        r.wait_log(r"from=<a@b>")
        r.ctl("queue", "--json")

Relayd(conf_extra="", listens=None, roles=None, start=True, expect_log=(), shipped=False)
    conf_extra  directives appended to the generated config
    listens     list of (mode, port-or-None) for `listen` lines; default
                [("smtp", None)]; a None port gets a free loopback port
    roles       e.g. "queue" or "intake,queue": passed as `-X roles` so only
                those workers run (tests of one worker)
    expect_log  regexes of trouble lines (see below) the test causes on purpose
    shipped     run relayd as shipped: no -d, so it daemonizes and logs to
                syslog; a private mount namespace gives it a /dev/log that
                the harness reads (needs root and unshare)
    r.port      the first listen port; r.ports[mode] the first of that mode
    r.dir       a temp dir (0755, so that a `user nobody` reaches the state
                dir), removed at stop; r.state_dir inside it
    r.conf_path the config file
    r.log()     relayd's log so far (stderr of all processes, or the syslog
                lines in shipped mode), r.wait_log(regex)
    r.ctl(*args, timeout=10) -> subprocess.CompletedProcess of relayctl
    r.pids()    {role: pid} from ps (master, intake, queue, delivery); start()
                returns once every process of the instance is there
    r.queue_rows(token=None)   row counts of every table of queue.db
    r.wait_nothing_stored(token)   no row of a message with token, and no
                incomplete message or orphan recipient/chunk, within a deadline
    r.allow_log(regex)   declares more expected trouble lines
    r.allow_master_exit(rc)  the test ends the master itself with status rc
                (or -signal); stop() then accepts that status
    r.stop()    SIGTERM to the master; returns its exit status
Helpers: wait_until(pred, timeout, what) (the one wait with a deadline),
wait_port(host, port), free_port(), make_cert(dir), write_root_only(path,
text), pid_alive(pid), proc_status(pid, field), proc_kb(pid, field),
ps_roles().
Every test should use the context manager (or addCleanup(r.cleanup)) so
the daemon stops even when the test fails.

What stop() checks, failing the test with an AssertionError:
  - the master exits with status 0 within STOP_BOUND seconds of SIGTERM
    (interface.md says 5 s; the margin is for a loaded machine);
  - no process of the instance is left (whatever is left is then killed);
  - the log has no worker death (`worker killed by signal`, `worker exited
    with status N` other than 0 at stop, `restarting`, a worker that did
    not stop or does not answer) and no `fatal:` line, except the lines an
    expect_log/allow_log regex matches.
"""
import ctypes
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(TOP, os.environ.get("BIN", "bin"))
RELAYD = os.path.join(BIN, "relayd")
RELAYCTL = os.path.join(BIN, "relayctl")

# interface.md: SIGTERM stops everything within 5 s. The bound allows for a
# loaded test machine; a master that takes longer fails the test.
STOP_BOUND = 8.0
START_BOUND = 15.0
ROLES = ("intake", "queue", "delivery")

# Lines that say a process of relayd died or gave up.
TROUBLE_RE = re.compile(r"worker killed by signal|worker exited with status (?!0\b)\d+"
                        r"|restarting|worker did not stop|does not answer|fatal:")


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
    def accepts():
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False
    return wait_until(accepts, timeout, "something to listen on %s:%d" % (host, port))


def wait_until(pred, timeout=10.0, what="condition", step=0.05):
    """Polls pred until it returns something true (returned) or timeout
    passes (AssertionError naming what: a string, or a function called
    then, e.g. to add the log's tail)."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.0f s waiting for %s"
                                 % (timeout, what() if callable(what) else what))
        time.sleep(step)


def write_root_only(path, text):
    """Writes text to path, mode 0600 (a secret only root may read); returns path."""
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


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


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _cwd(pid):
    try:
        return os.readlink("/proc/%d/cwd" % pid)
    except OSError:
        return None


def pid_alive(pid):
    """True while pid exists and is not a zombie (a worker whose master
    died may stay a zombie when nothing reaps it)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def proc_status(pid, field):
    """The values of field in /proc/PID/status as strings: "Uid" gives
    real, effective, saved and fs uid; "VmRSS" the size and "kB"."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, values = line.partition(":")
            if name == field:
                return values.split()
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def proc_kb(pid, field="VmRSS"):
    """A size field of /proc/PID/status (VmRSS, VmHWM, ...) in kB."""
    return int(proc_status(pid, field)[0])


_PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper():
    """A daemonized relayd is reparented to this process, which can then
    wait for it and see its exit status."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class SyslogSink:
    """A stand-in /dev/log: a datagram socket at path whose messages are
    appended, one per line, to log_path by a thread."""

    def __init__(self, path, log_path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)  # workers write to it after dropping privileges
        self.sock.settimeout(0.1)
        self.log_path = log_path
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        with open(self.log_path, "ab", 0) as f:
            while True:
                try:
                    f.write(self.sock.recv(65536).rstrip(b"\n") + b"\n")
                except socket.timeout:
                    if self._stop.is_set():
                        return  # stopped and drained
                except OSError:
                    return

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=10)
        self.sock.close()


class Relayd:
    def __init__(self, conf_extra="", listens=None, roles=None, start=True,
                 hostname="relayd.test", expect_log=(), shipped=False):
        self.dir = tempfile.mkdtemp(prefix="relayd-test-")
        # The state dir inside must be reachable by the workers' `user`
        # (nobody) when a test sets one; mkdtemp makes it 0700.
        os.chmod(self.dir, 0o755)
        self.state_dir = os.path.join(self.dir, "state")
        os.mkdir(self.state_dir)
        self.conf_path = os.path.join(self.dir, "relayd.conf")
        self.log_path = os.path.join(self.dir, "relayd.log")
        self.roles = roles
        self.shipped = shipped
        self.expected = [re.compile(x) for x in expect_log]
        self.master_exit = 0
        self.ports = {}
        lines = ["hostname %s" % hostname, "state-dir %s" % self.state_dir]
        for mode, port in (listens or [("smtp", None)]):
            port = port or free_port()
            self.ports.setdefault(mode, port)
            lines.append("listen 127.0.0.1:%d %s" % (port, mode))
            if not hasattr(self, "port"):
                self.port = port
        # No test asks the machine's resolver (whose answers, such as a
        # PTR "localhost" for 127.0.0.1, differ from one machine to the
        # next): unless the test brings its own DNS, a loopback port where
        # nothing listens refuses every query at once.
        if "dns-server" not in conf_extra:
            lines.append("dns-server 127.0.0.1:%d" % free_udp_port())
        self.conf = "\n".join(lines) + "\n" + conf_extra
        with open(self.conf_path, "w") as f:
            f.write(self.conf)
        self.proc = None
        self.master_pid = None
        self._logf = None
        self._sink = None
        self._stopped = False
        if start:
            self.start()

    # ---- starting ----------------------------------------------------------

    def start(self):
        args = [RELAYD, "-f", self.conf_path] + ([] if self.shipped else ["-d", "-v"])
        if self.roles:
            args += ["-X", self.roles]
        self._stopped = False
        self._logf = open(self.log_path, "ab")
        try:
            if self.shipped:
                self._start_shipped(args)
            else:
                self.proc = subprocess.Popen(args, stdout=self._logf, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=self.dir)
                self.master_pid = self.proc.pid
            end = time.monotonic() + START_BOUND
            sock = os.path.join(self.state_dir, "control.sock")
            while not os.path.exists(sock):
                if not self._master_alive():
                    raise RuntimeError("relayd exited %r:\n%s" % (self._reap(0), self.log()))
                if time.monotonic() > end:
                    raise TimeoutError("relayd did not start:\n" + self.log())
                time.sleep(0.05)
            if self.roles is None or "intake" in self.roles:
                wait_port("127.0.0.1", self.port)
            # The master holds the listening sockets, so the port answers
            # before intake runs: started means every process is there.
            want = {"master"} | set(self.roles.split(",") if self.roles else ROLES)
            wait_until(lambda: want <= set(self.pids()), START_BOUND,
                       lambda: "relayd's processes %s (there: %s):\n%s"
                       % (sorted(want), sorted(self.pids()), self.log()[-3000:]))
        except BaseException:
            self._stopped = True  # the start error is the test's error
            self._kill_all()
            self._close_log()
            raise
        return self

    def _start_shipped(self, args):
        """unshare gives relayd a private /dev whose log is our SyslogSink;
        relayd daemonizes, and its master is found by its title and cwd."""
        _become_subreaper()
        dev = os.path.join(self.dir, "dev")
        os.mkdir(dev)
        binds = []
        for node in ("null", "zero", "random", "urandom", "tty"):
            open(os.path.join(dev, node), "w").close()
            binds.append("mount --bind /dev/%s %s/%s" % (node, dev, node))
        self._sink = SyslogSink(os.path.join(dev, "log"), self.log_path)
        script = " && ".join(binds + ["mount --rbind %s /dev" % dev, 'exec "$@"'])
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private",
                                      "sh", "-c", script, "sh"] + args,
                                     stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir)
        # The foreground process exits 0 once the daemon is forked.
        rc = self.proc.wait(timeout=START_BOUND)
        if rc != 0:
            raise RuntimeError("relayd (shipped) exited %d:\n%s" % (rc, self.log()))
        self.master_pid = wait_until(lambda: self._find_master(), START_BOUND,
                                     "the daemonized relayd master")

    def _find_master(self):
        for pid, args in ps_roles().items():
            if args == "relayd: master" and _cwd(pid) == self.dir:
                return pid
        return None

    # ---- the running instance --------------------------------------------

    def _master_alive(self):
        if self.master_pid is None:
            return False
        if not self.shipped:
            return self.proc.poll() is None
        if self.master_exit_status is not None:
            return False
        try:
            pid, status = os.waitpid(self.master_pid, os.WNOHANG)
        except ChildProcessError:
            return pid_alive(self.master_pid)
        if pid == 0:
            return True
        self.master_exit_status = os.waitstatus_to_exitcode(status)
        return False

    master_exit_status = None
    stop_seconds = None  # how long the last clean stop took

    def _reap(self, timeout):
        """The master's exit status (negative: killed by that signal) once
        it exits within timeout seconds, else None."""
        if self.master_pid is None:
            return None
        if not self.shipped:
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
        end = time.monotonic() + timeout
        while self._master_alive():
            if time.monotonic() > end:
                return None
            time.sleep(0.02)
        return self.master_exit_status

    def instance_pids(self):
        """Every live relayd process of this instance (they all run in r.dir)."""
        return {pid for pid in ps_roles() if pid_alive(pid) and _cwd(pid) == self.dir}

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, regex, timeout=10.0, start=0):
        """Waits for regex in the log (from character offset start);
        returns the match or raises AssertionError with the log."""
        pat = re.compile(regex)
        return wait_until(lambda: pat.search(self.log(), start), timeout,
                          lambda: "%r in the log:\n%s" % (regex, self.log()[-4000:]))

    def ctl(self, *args, timeout=10):
        p = subprocess.run([RELAYCTL, "-f", self.conf_path] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        keep_sanitizer_report(p.stderr, "relayctl")
        return p

    def pids(self):
        """{role: pid} of this instance's processes (children of our master)."""
        out = {}
        if not self._master_alive():
            return out
        master = self.master_pid
        for pid, args in ps_roles().items():
            role = args.split()[1]
            if pid == master:
                out["master"] = pid
            elif _ppid(pid) == master and pid_alive(pid):
                out[role] = pid
        return out

    def queue_rows(self, token=None):
        """What queue.db holds, read by another SQLite reader: rows of every
        table, {"messages": n, "recipients": n, "chunks": n, "incomplete": n,
        "orphan recipients": n, "orphan chunks": n}. With token, the rows
        of messages whose sender or content contains it (complete or not),
        their recipients and their chunks."""
        db = sqlite3.connect(os.path.join(self.state_dir, "queue.db"), timeout=10)
        try:
            q = lambda sql, *a: db.execute(sql, a).fetchone()[0]
            if token is not None:
                tb = token.encode()
                mine = ("SELECT qid FROM messages WHERE instr(sender, ?1) > 0 UNION "
                        "SELECT qid FROM chunks WHERE instr(data, ?2) > 0")
                return {"messages": q("SELECT count(*) FROM messages WHERE qid IN (%s)" % mine,
                                      token, tb),
                        "recipients": q("SELECT count(*) FROM recipients WHERE qid IN (%s)"
                                        % mine, token, tb),
                        "chunks": q("SELECT count(*) FROM chunks WHERE qid IN (%s)" % mine,
                                    token, tb)}
            return {
                "messages": q("SELECT count(*) FROM messages"),
                "recipients": q("SELECT count(*) FROM recipients"),
                "chunks": q("SELECT count(*) FROM chunks"),
                "incomplete": q("SELECT count(*) FROM messages WHERE complete = 0"),
                "orphan recipients": q("SELECT count(*) FROM recipients WHERE qid NOT IN "
                                       "(SELECT qid FROM messages WHERE complete = 1)"),
                "orphan chunks": q("SELECT count(*) FROM chunks WHERE qid NOT IN "
                                   "(SELECT qid FROM messages WHERE complete = 1)"),
            }
        finally:
            db.close()

    def wait_nothing_stored(self, token, timeout=10.0):
        """Waits until queue.db holds no row of a message with token and no
        incomplete message, recipient or chunk; raises AssertionError with
        what is left."""
        left = {}

        def empty():
            left.update(self.queue_rows(token))
            rows = self.queue_rows()
            left.update({k: rows[k] for k in ("incomplete", "orphan recipients", "orphan chunks")})
            return all(v == 0 for v in left.values())
        try:
            wait_until(empty, timeout, "nothing stored for %r" % token)
        except AssertionError:
            raise AssertionError("queue.db still holds rows for %r: %r" % (token, left)) from None

    # ---- what the test expects ------------------------------------------

    def allow_log(self, regex):
        """Trouble lines matching regex are expected (a test that kills a
        worker on purpose)."""
        self.expected.append(re.compile(regex))

    def allow_master_exit(self, status):
        """The test ends the master itself; stop() accepts this exit status
        (a negative number: killed by that signal)."""
        self.master_exit = status

    def trouble(self):
        """The trouble lines of the log that no expected regex matches."""
        return [line for line in self.log().splitlines()
                if TROUBLE_RE.search(line) and not any(x.search(line) for x in self.expected)]

    # ---- stopping --------------------------------------------------------

    def stop(self):
        """SIGTERM to the master; returns its exit status. Raises
        AssertionError when it did not stop cleanly within STOP_BOUND, left
        a process behind, or logged trouble the test did not expect."""
        if self._stopped or self.master_pid is None:
            return self.master_exit_status if self.shipped else (
                self.proc.returncode if self.proc else None)
        self._stopped = True
        problems = []
        if self._master_alive():
            os.kill(self.master_pid, signal.SIGTERM)
            t0 = time.monotonic()
            rc = self._reap(STOP_BOUND)
            took = time.monotonic() - t0
            if rc is None:
                problems.append("the master did not exit within %.0f s of SIGTERM" % STOP_BOUND)
            elif rc != 0:
                problems.append("the master exited %d after SIGTERM" % rc)
            else:
                self.stop_seconds = took
        else:
            rc = self._reap(0)
            if rc != self.master_exit:
                problems.append("the master had exited %r before stop (expected %r)"
                                % (rc, self.master_exit))
        # Workers end before the master; a short grace for /proc to catch up.
        left = self.instance_pids()
        end = time.monotonic() + 1.0
        while left and time.monotonic() < end:
            time.sleep(0.05)
            left = self.instance_pids()
        if left:
            problems.append("processes of the instance left: %s"
                            % {p: ps_roles().get(p) for p in left})
        if rc is None or left:
            self._kill_all()
            rc = self._reap(5) if rc is None else rc
        self._close_log()
        bad = self.trouble()
        if bad:
            problems.append("unexpected trouble in the log:\n  " + "\n  ".join(bad[:20]))
        if problems:
            raise AssertionError("relayd in %s did not run and stop cleanly: %s\n--- log tail:\n%s"
                                 % (self.dir, "; ".join(problems), self.log()[-3000:]))
        return rc

    def _kill_all(self):
        for pid in [self.master_pid] + sorted(self.instance_pids()):
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.master_pid is not None:
            self._reap(5)

    def _close_log(self):
        if self._sink is not None:
            self._sink.stop()
            self._sink = None
        if self._logf:
            self._logf.close()
            self._logf = None
            keep_sanitizer_report(self.log(), "relayd")

    def cleanup(self):
        try:
            self.stop()
        finally:
            if not os.environ.get("KEEP_TEST_DIRS"):
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

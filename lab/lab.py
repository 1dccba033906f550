"""lab.py - a little internet on one machine, for studying how mail servers
find and talk to each other (`make lab`; docs/lab.md is the tutorial).

On loopback only, without root: a DNS server (dnsmasq) for a handful of
organisations' domains under .lab, relayd instances as their mail servers
(one of them the students' LAN smarthost, with AUTH users), the lab's own
final servers that write every message into a Maildir (lab_mail.py), a
greylisting MX, an MX that rejects some users, one that offers STARTTLS with
a certificate of the lab's CA, one on IPv6 only, a primary MX that is down,
a null MX, a name that does not exist and a domain whose DNS never answers.

    /usr/bin/python3 lab/lab.py              # runs until Ctrl-C, then cleans up
    LAB_DIR=/tmp/x LAB_PORT=2600 ... lab.py  # another folder, another port

Everything listens on one port (LAB_PORT, default 2525) of its own loopback
address (127.0.0.0/8 is all loopback on Linux), because relayd delivers to
every MX on one `delivery-port`. Every process is started in its own
session (Ctrl-C reaches only this script, which stops them in order) and
dies with this script (PR_SET_PDEATHSIG) should it be killed. Lab (the
class) is also what `make lab-test` and `make lab-chaos` start.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from lab_mail import LabMailServer  # noqa: E402

BIN = os.path.join(TOP, os.environ.get("BIN", "bin"))
RELAYD = os.path.join(BIN, "relayd")
RELAYCTL = os.path.join(BIN, "relayctl")

DNS_IP = "127.0.0.5"
SILENT_DNS_IP = "127.0.0.6"
MAILBOX_IP = "127.0.0.2"

# Users of the LAN smarthost (AUTH) and their passwords: a lab, not a secret.
LAN_USERS = {"alice": "wonderland", "bob": "builder"}
STRICT_REJECTS = ("nobody", "olduser")
GREYLIST_DELAY = 5  # seconds before a greylisted triple is accepted

# The organisations' mail servers that are relayd: name, hostname, address,
# the domains they take mail for. Each hands its domains' mail to the
# mailbox server (route ... [127.0.0.2]), as an organisation's gateway hands
# mail to its internal store.
RELAYS = [
    ("example", "mx1.example.lab", "127.0.0.11", ["example.lab"]),
    ("backup", "mx2.example.lab", "127.0.0.12", ["example.lab", "fallback.lab"]),
    ("implicit", "implicit.lab", "127.0.0.14", ["implicit.lab"]),
    ("secure", "mx.secure.lab", "127.0.0.17", ["secure.lab"]),
    ("v6", "mx.v6.lab", "::1", ["v6.lab"]),
]

# DNS: (domain, MX target, preference); "." is a null MX (RFC 7505).
MX_RECORDS = [
    ("example.lab", "mx1.example.lab", 10),
    ("example.lab", "mx2.example.lab", 20),
    ("fallback.lab", "mx1.fallback.lab", 10),
    ("fallback.lab", "mx2.fallback.lab", 20),
    ("nullmx.lab", ".", 0),
    ("grey.lab", "mx.grey.lab", 10),
    ("strict.lab", "mx.strict.lab", 10),
    ("secure.lab", "mx.secure.lab", 10),
    ("v6.lab", "mx.v6.lab", 10),
    ("lan.lab", "mailbox.lab", 10),
]
HOSTS = {
    "smtp.lan.lab": "127.0.0.10",
    "mailbox.lab": MAILBOX_IP,
    "mx1.example.lab": "127.0.0.11",
    "mx2.example.lab": "127.0.0.12",
    "mx1.fallback.lab": "127.0.0.13",   # nothing listens there: the primary is down
    "mx2.fallback.lab": "127.0.0.12",
    "implicit.lab": "127.0.0.14",       # no MX: the domain's own address (implicit MX)
    "mx.grey.lab": "127.0.0.15",
    "mx.strict.lab": "127.0.0.16",
    "mx.secure.lab": "127.0.0.17",
    "mx.v6.lab": "::1",                 # AAAA only
}

# What the map says of each domain, in the order a student meets them.
DOMAINS = [
    ("lan.lab", "the students' LAN: smtp.lan.lab is its smarthost (AUTH), mailbox.lab its store"),
    ("example.lab", "two MX: mx1 (pref 10) and mx2 (pref 20), both up"),
    ("fallback.lab", "two MX: mx1 (pref 10) is DOWN (nothing listens), mx2 (pref 20) takes the mail"),
    ("implicit.lab", "no MX record: mail goes to the domain's own A record (implicit MX)"),
    ("nullmx.lab", "MX 0 . (null MX, RFC 7505): the domain takes no mail, bounce 5.1.10"),
    ("nosuch.lab", "does not exist (NXDOMAIN): bounce at once"),
    ("slow.lab", "its DNS server never answers: a temporary failure, retried"),
    ("grey.lab", "greylisting MX: 451 4.7.1 to a new (client, sender, recipient) for %d s"
     % GREYLIST_DELAY),
    ("strict.lab", "MX rejects %s with 550 5.1.1; other users are accepted"
     % " and ".join(STRICT_REJECTS)),
    ("secure.lab", "MX offers STARTTLS with a certificate from the lab CA; the smarthost verifies it"),
    ("v6.lab", "MX mx.v6.lab has only an IPv6 address (::1)"),
]

# The LAN smarthost and every relayd in the lab retry quickly, so that a
# student sees retries, delay notices and expiry within minutes.
RETRY_CONF = ("retry-min 10s\nretry-max 20s\nqueue-lifetime 3m\ndelay-warning 1m\n")


def _pdeathsig():
    """In the child before exec: its own session (Ctrl-C goes to the lab
    script only), and SIGTERM when the lab script dies."""
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)


class Lab:
    """Starts the whole lab in directory d on port; stop() ends it all."""

    def __init__(self, d, port=2525, quiet=False, extra_conf=""):
        self.dir, self.port, self.quiet = d, port, quiet
        self.extra_conf = extra_conf
        self.procs = {}      # name -> Popen
        self.pgids = []      # their process groups, kept after they end
        self.mail = []       # LabMailServer
        self.silent = None
        self.started = False

    # ---- paths -----------------------------------------------------------------

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def conf(self, name):
        return self.path(name, "relayd.conf")

    def ctl(self, name, *args, timeout=15):
        """relayctl against one of the lab's relayd; (exit status, output)."""
        p = subprocess.run([RELAYCTL, "-f", self.conf(name)] + list(args), capture_output=True,
                           text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr

    def say(self, text):
        if not self.quiet:
            print(text, flush=True)

    # ---- starting ----------------------------------------------------------------

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        for b in (RELAYD, RELAYCTL):
            if not os.access(b, os.X_OK):
                raise RuntimeError("%s is missing: run make first" % b)
        os.makedirs(self.dir, exist_ok=True)
        with open(self.path("lab.pid"), "w") as f:
            f.write("%d\n" % os.getpid())
        for sub in ("log", "mail", "tls"):
            os.makedirs(self.path(sub), exist_ok=True)
        self._check_port()
        self._make_tls()
        self._start_dns()
        self._start_mail()
        self._start_relays()
        self.started = True

    def _check_port(self):
        for ip in ["127.0.0.10", MAILBOX_IP, DNS_IP] + [r[2] for r in RELAYS]:
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                # As the servers do: connections of a lab that just ended
                # (TIME_WAIT) do not count, a listener does.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((ip, self.port))
                    s.listen(1)
                except OSError as e:
                    raise RuntimeError("%s port %d is taken (%s): is a lab running already? "
                                       "LAB_PORT=N chooses another port" % (ip, self.port, e))

    def _make_tls(self):
        """The lab CA, and a certificate it signs for each TLS server."""
        t = self.path("tls")
        self.ca = os.path.join(t, "lab-ca.pem")
        cakey = os.path.join(t, "lab-ca.key")
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cakey,
                 "-out", self.ca, "-days", "2", "-subj", "/O=relayd lab/CN=relayd lab CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.certs = {}
        for name in ("smtp.lan.lab", "mx.secure.lab"):
            key, csr = os.path.join(t, name + ".key"), os.path.join(t, name + ".csr")
            cert, ext = os.path.join(t, name + ".pem"), os.path.join(t, name + ".ext")
            with open(ext, "w") as f:
                f.write("basicConstraints=CA:FALSE\nsubjectAltName=DNS:%s\n"
                        "extendedKeyUsage=serverAuth\n" % name)
            _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                     "-out", csr, "-subj", "/O=relayd lab/CN=" + name)
            _openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", cakey,
                     "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
            self.certs[name] = (cert, key)

    def _spawn(self, name, args, cwd=None):
        log = open(self.path("log", name + ".log"), "ab")
        try:
            p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, cwd=cwd or self.dir,
                                 preexec_fn=_pdeathsig)
        finally:
            log.close()
        self.procs[name] = p
        self.pgids.append(p.pid)  # its own session: pgid == pid
        return p

    def _start_dns(self):
        # slow.lab is delegated to a server that reads queries and never answers.
        self.silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.silent.bind((SILENT_DNS_IP, self.port))
        args = ["dnsmasq", "--keep-in-foreground", "--port=%d" % self.port,
                "--listen-address=" + DNS_IP, "--bind-interfaces", "--no-resolv",
                "--no-hosts", "--conf-file=/dev/null", "--log-queries",
                "--log-facility=" + self.path("log", "dnsmasq.log"), "--pid-file=",
                "--user=%s" % _user_name(), "--local=/lab/",
                "--server=/slow.lab/%s#%d" % (SILENT_DNS_IP, self.port)]
        for domain, target, pref in MX_RECORDS:
            args.append("--mx-host=%s,%s,%d" % (domain, target, pref))
        for name, ip in HOSTS.items():
            args.append("--host-record=%s,%s" % (name, ip))
        self._spawn("dnsmasq", args)
        _wait(lambda: _dns_answers(DNS_IP, self.port), 10, "dnsmasq to answer",
              self.procs["dnsmasq"])

    def _start_mail(self):
        md = self.path("mail")
        for name, ip, hostname, kind in (("mailbox", MAILBOX_IP, "mailbox.lab", "mailbox"),
                                         ("grey", "127.0.0.15", "mx.grey.lab", "greylist"),
                                         ("strict", "127.0.0.16", "mx.strict.lab", "strict")):
            self.mail.append(LabMailServer(name, ip, self.port, md,
                                           self.path("log", name + ".log"), hostname, kind,
                                           delay=GREYLIST_DELAY, reject=STRICT_REJECTS))

    def _relay_conf(self, name, hostname, ip, body):
        d = self.path(name)
        os.makedirs(os.path.join(d, "state"), exist_ok=True)
        listen = "[%s]" % ip if ":" in ip else ip
        text = ("# %s: %s (the lab writes this file; see lab/lab.py)\n"
                "hostname %s\nlisten %s:%d smtp\nstate-dir %s\n"
                "dns-server %s:%d\ndelivery-port %d\n%s%s%s"
                % (name, hostname, hostname, listen, self.port, os.path.join(d, "state"),
                   DNS_IP, self.port, self.port, RETRY_CONF, body, self.extra_conf))
        with open(self.conf(name), "w") as f:
            f.write(text)

    def _start_relays(self):
        # The LAN smarthost: the students' machine (127.0.0.1) relays freely,
        # anyone else must authenticate, over TLS. Mail leaves by MX lookup.
        users = self.path("lan", "users")
        os.makedirs(self.path("lan"), exist_ok=True)
        with open(users, "w") as f:
            for u, pw in LAN_USERS.items():
                h = subprocess.run(["openssl", "passwd", "-6", pw], capture_output=True,
                                   text=True, check=True, timeout=30).stdout.strip()
                f.write("%s:%s\n" % (u, h))
        os.chmod(users, 0o600)
        cert, key = self.certs["smtp.lan.lab"]
        self._relay_conf("lan", "smtp.lan.lab", "127.0.0.10",
                         "mynetworks 127.0.0.1/32\ntls-cert %s\ntls-key %s\nauth-users %s\n"
                         "tls-ca-file %s\nroute secure.lab secure.lab:%d tls=verify\n"
                         % (cert, key, users, self.ca, self.port))
        for name, hostname, ip, domains in RELAYS:
            body = ("mynetworks 127.255.255.255/32\nrelay-domains %s\n" % " ".join(domains)
                    + "".join("route %s [%s]:%d\n" % (dom, MAILBOX_IP, self.port)
                              for dom in domains))
            if name == "secure":
                cert, key = self.certs["mx.secure.lab"]
                body += "tls-cert %s\ntls-key %s\n" % (cert, key)
            self._relay_conf(name, hostname, ip, body)
        for name in ["lan"] + [r[0] for r in RELAYS]:
            self._spawn(name, [RELAYD, "-d", "-v", "-f", self.conf(name)], cwd=self.path(name))
        for name, ip in [("lan", "127.0.0.10")] + [(r[0], r[2]) for r in RELAYS]:
            sock = self.path(name, "state", "control.sock")
            _wait(lambda: os.path.exists(sock) and _port_open(ip, self.port), 15,
                  "relayd %s to listen on %s" % (name, ip), self.procs[name])

    # ---- stopping ----------------------------------------------------------------

    def lab_pids(self):
        """Every process of the lab: those whose working directory is inside
        the lab folder (each relayd's master and workers run in LAB/NAME),
        and those in the process group of one the lab started (dnsmasq's
        children for TCP queries run in "/")."""
        groups = set(self.pgids)
        out = []
        for p in os.listdir("/proc"):
            if not p.isdigit() or int(p) == os.getpid():
                continue
            try:
                cwd = os.readlink("/proc/%s/cwd" % p)
                with open("/proc/%s/stat" % p) as f:
                    pgid = int(f.read().rsplit(")", 1)[1].split()[2])
            except (OSError, ValueError, IndexError):
                continue
            if cwd == self.dir or cwd.startswith(self.dir + "/") or pgid in groups:
                out.append(int(p))
        return out

    def stop(self, keep_files=False):
        """SIGTERM to every process first (relayd stops its workers within
        5 s), then the lab's own servers; SIGKILL to whatever is left after
        10 s; then the folder goes."""
        for name, p in self.procs.items():
            if p.poll() is None:
                # dnsmasq's whole group (its TCP children); relayd's master only:
                # it stops its workers in order.
                if name == "dnsmasq":
                    _killpg(p.pid, signal.SIGTERM)
                else:
                    p.send_signal(signal.SIGTERM)
        for m in self.mail:
            try:
                m.stop()
            except Exception as e:  # a server that failed to start has nothing to stop
                self.say("lab: stopping %s: %s" % (m.name, e))
        self.mail = []
        if self.silent:
            self.silent.close()
            self.silent = None
        end = time.monotonic() + 10
        for name, p in self.procs.items():
            try:
                p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say("lab: %s did not stop within 10 s: killed" % name)
                p.kill()
                p.wait(timeout=5)
        self.procs = {}
        # Workers whose master was killed end when their channel closes.
        _wait(lambda: not self.lab_pids(), 10, "the lab's processes to end", None,
              raise_=False)
        for pid in self.lab_pids():
            self.say("lab: process %d still there: killed" % pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not keep_files and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- the map -----------------------------------------------------------------

    def map_text(self):
        P = self.port
        ctl = "%s -f %s" % (os.path.relpath(RELAYCTL), self.conf("lan"))
        mx_of = {}
        for dom, tgt, pref in MX_RECORDS:
            mx_of.setdefault(dom, []).append("MX %d %s" % (pref, tgt))
        who = {MAILBOX_IP: "mailbox (the lab's Maildir writer)",
               "127.0.0.10": "relayd lan (LAN smarthost)",
               "127.0.0.13": "nothing (down)",
               "127.0.0.15": "greylisting MX (lab)",
               "127.0.0.16": "strict MX (lab)"}
        for name, hostname, ip, _ in RELAYS:
            who[ip] = who.get(ip, "relayd %s" % name)
        lines = ["", "relayd lab: a little internet on loopback, port %d everywhere" % P,
                 "folder %s (logs in log/, mailboxes in mail/DOMAIN/USER/new/)" % self.dir,
                 "", "DNS: dnsmasq at %s port %d   dig @%s -p %d MX example.lab"
                 % (DNS_IP, P, DNS_IP, P), ""]
        for dom, what in DOMAINS:
            recs = ", ".join(mx_of.get(dom, [])) or (
                "no MX" if dom in HOSTS else "-")
            lines.append("  %-13s %s" % (dom, what))
            lines.append("  %-13s   DNS: %s" % ("", recs))
        lines += ["", "Hosts (name, address, who plays it):"]
        for name, ip in HOSTS.items():
            lines.append("  %-18s %-11s %s" % (name, ip, who.get(ip, "")))
        lines += ["", "LAN smarthost smtp.lan.lab = 127.0.0.10:%d (STARTTLS, lab CA %s)" % (
            P, os.path.join(self.dir, "tls", "lab-ca.pem")),
            "  relays for 127.0.0.1 without AUTH; from any other address AUTH is needed",
            "  (after STARTTLS). Users: " + ", ".join("%s / %s" % kv for kv in LAN_USERS.items()),
            "  retries: retry-min 10s, retry-max 20s, delay notice after 1m, bounce after 3m",
            "", "Try:",
            "  nc -C 127.0.0.10 %d                      # type EHLO me, MAIL FROM:<alice@lan.lab>, ..." % P,
            "  nc -C -s 127.0.0.99 127.0.0.10 %d        # from 'outside': relaying needs AUTH" % P,
            "  openssl s_client -quiet -starttls smtp -crlf -CAfile %s -connect 127.0.0.10:%d"
            % (os.path.join(self.dir, "tls", "lab-ca.pem"), P),
            "  swaks --server 127.0.0.10:%d --from alice@lan.lab --to bob@example.lab" % P,
            "  %s route bob@fallback.lab" % ctl,
            "  %s queue ;  %s trace QID" % (ctl, ctl),
            "  ls %s/mail/*/*/new/" % self.dir,
            "", "Ctrl-C stops the lab and removes its folder.", ""]
        return "\n".join(lines)


# ---- small helpers ------------------------------------------------------------------

def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _user_name():
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


def _port_open(ip, port):
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((ip, port)) == 0


def _dns_answers(ip, port):
    q = bytes.fromhex("12340100000100000000000007657861") + b"mple\x03lab\x00\x00\x0f\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(q, (ip, port))
            return len(s.recv(512)) > 12
        except OSError:
            return False


def _wait(pred, timeout, what, proc, raise_=True):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s: the process exited with %s" % (what, proc.returncode))
        time.sleep(0.05)
    if raise_:
        raise TimeoutError("timed out waiting for " + what)
    return False


def _stale(d):
    """A lab folder left by a lab that is gone (killed with SIGKILL)."""
    try:
        with open(os.path.join(d, "lab.pid")) as f:
            os.kill(int(f.read().strip()), 0)
        return False
    except (OSError, ValueError):
        return True


def main():
    d = os.path.abspath(os.environ.get("LAB_DIR", "/tmp/relayd-lab"))
    port = int(os.environ.get("LAB_PORT", "2525"))
    if os.path.exists(d):
        if not _stale(d):
            sys.exit("lab: %s belongs to a lab that runs (Ctrl-C it, or set LAB_DIR)" % d)
        shutil.rmtree(d)
    lab = Lab(d, port)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    # Also SIGINT: a shell starts background jobs with it ignored, and
    # Python then leaves it so.
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    t0 = time.monotonic()
    try:
        lab.start()
        print(lab.map_text(), flush=True)
        print("lab: up in %.1f s" % (time.monotonic() - t0), flush=True)
        while True:
            for name, p in lab.procs.items():
                if p.poll() is not None:
                    raise RuntimeError("%s exited with %s (see %s)" % (
                        name, p.returncode, lab.path("log", name + ".log")))
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nlab: stopping", flush=True)
        status = 0
    except Exception as e:
        print("lab: %s" % e, file=sys.stderr, flush=True)
        status = 1
    lab.stop()
    left = lab.lab_pids()
    print("lab: stopped; %d process(es) left, folder %s" % (
        len(left), "left behind" if os.path.exists(d) else "removed"), flush=True)
    sys.exit(1 if left or os.path.exists(d) else status)


if __name__ == "__main__":
    main()

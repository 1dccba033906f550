"""intake_util.py - shared helpers for the intake integration tests
(tests/integration/test_intake_*.py).

- Client: a raw SMTP client over a socket (optionally TLS) that reads
  replies exactly as the server sent them; every socket has a timeout.
- ReplyAsserts: a TestCase mixin asserting reply codes and RFC 3463
  enhanced codes.
- queue helpers: the messages relayctl lists, the "QID: from=<...>" log
  lines of accepted messages.
- Upstream: a fake next hop (aiosmtpd) recording what relayd relays to it.
- swaks(): runs swaks and returns the transcript.
- certificates and auth-users files made once per test process.
"""
import atexit
import base64
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import warnings

from fakes.dlv_mx import FakeMX
from harness import Relayd, free_port, make_cert, wait_until

warnings.filterwarnings("ignore", category=DeprecationWarning)

HOSTNAME = "relayd.test"          # the harness's default `hostname`
CLIENT_HELO = "client.example"
# Tests that only need intake and the queue run without the delivery
# worker, so accepted mail stays in the queue where relayctl can count it.
# The config also points the smarthost at a port where nothing listens.
QUEUE_ROLES = "intake,queue"
IO_TIMEOUT = 10.0

ENH_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")
QUEUED_RE = re.compile(r"^2\.0\.0 Ok: queued as (\S+)$")


class ConnectionClosed(Exception):
    pass


class Reply:
    """One SMTP reply: code (int), lines (texts after "NNN-"/"NNN ")."""

    def __init__(self, code, lines):
        self.code = code
        self.lines = lines

    @property
    def text(self):
        return self.lines[-1] if self.lines else ""

    @property
    def enhanced(self):
        """The enhanced status code at the start of the first line, or None."""
        m = ENH_RE.match(self.lines[0]) if self.lines else None
        return "%s.%s.%s" % m.groups() if m else None

    @property
    def qid(self):
        """The queue id of a `250 2.0.0 Ok: queued as QID` reply, or None."""
        m = QUEUED_RE.match(self.text) if self.code == 250 else None
        return m.group(1) if m else None

    def keywords(self):
        """EHLO keywords (upper case) -> the rest of their line."""
        kw = {}
        for line in self.lines[1:]:
            name, _, rest = line.partition(" ")
            kw[name.upper()] = rest
        return kw

    def __repr__(self):
        return "<Reply %d %r>" % (self.code, self.lines)


class Client:
    """A raw SMTP client. Bytes are sent exactly as given; replies are
    parsed from what the server sent. tls=True wraps the socket in TLS
    before the greeting (smtps)."""

    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT, source=None, tls=False,
                 tls_ctx=None):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.closed = False
        if tls:
            self.sock = (tls_ctx or client_tls_ctx()).wrap_socket(self.sock)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ssl.SSLError as e:
            # a TLS close_notify or alert after a 421: treat as closed
            if "EOF" in str(e) or "closed" in str(e).lower():
                chunk = b""
            else:
                raise
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise ConnectionClosed("connection closed; unparsed %r" % self.buf)
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """Reads one complete (possibly multiline) reply."""
        lines = []
        code = None
        while True:
            line = self._line()
            m = re.match(r"^(\d{3})([ -])(.*)$", line)
            if not m:
                raise AssertionError("malformed reply line %r (so far %r)" % (line, lines))
            if code is not None and int(m.group(1)) != code:
                raise AssertionError("code changed inside a multiline reply: %r then %r"
                                     % (lines, line))
            code = int(m.group(1))
            lines.append(m.group(3))
            if m.group(2) == " ":
                return Reply(code, lines)

    def cmd(self, line):
        """Sends one command line (CRLF added) and returns its reply."""
        self.send(line.encode() + b"\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply()

    def greeting(self):
        return self.reply()

    def ehlo(self, name=CLIENT_HELO):
        return self.cmd("EHLO " + name)

    def replies_until_close(self, limit=50, idle=3.0):
        """Every reply until the server closes, `idle` seconds pass with
        nothing more, or `limit` replies; returns (replies, closed)."""
        out = []
        old = self.sock.gettimeout()
        self.sock.settimeout(idle)
        try:
            while len(out) < limit:
                try:
                    out.append(self.reply())
                except ConnectionClosed:
                    return out, True
                except (socket.timeout, TimeoutError):
                    return out, False
        finally:
            try:
                self.sock.settimeout(old)
            except OSError:
                pass
        return out, False

    def wait_closed(self, timeout=5.0):
        """True when the server closes the connection within timeout
        (any data still arriving is read and discarded)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                self._fill()
            except ConnectionClosed:
                return True
            except (socket.timeout, TimeoutError):
                return False
            except OSError:
                return True
        return False

    def pending(self, wait=1.0):
        """Bytes that arrive within `wait` seconds without us sending
        anything (b"" if none or if the connection closed)."""
        self.sock.settimeout(wait)
        try:
            self._fill()
        except (socket.timeout, TimeoutError, ConnectionClosed):
            pass
        finally:
            self.sock.settimeout(self.timeout)
        data, self.buf = self.buf, b""
        return data

    def starttls(self, ctx=None):
        """STARTTLS, expecting 220, then the handshake. Returns the reply."""
        r = self.cmd("STARTTLS")
        if r.code == 220:
            self.tls_handshake(ctx)
        return r

    def tls_handshake(self, ctx=None):
        if self.buf:
            raise AssertionError("plaintext bytes after the 220 to STARTTLS: %r" % self.buf)
        self.sock = (ctx or client_tls_ctx()).wrap_socket(self.sock)
        self.sock.settimeout(self.timeout)

    def transaction(self, sender, rcpts, body, helo=True):
        """A whole transaction, one command at a time. Returns the replies
        (MAIL, RCPT..., DATA, end of data) and stops at the first failure."""
        out = []
        if helo:
            out.append(self.ehlo())
        out.append(self.cmd("MAIL FROM:<%s>" % sender))
        if out[-1].code != 250:
            return out
        for rc in rcpts:
            out.append(self.cmd("RCPT TO:<%s>" % rc))
        out.append(self.cmd("DATA"))
        if out[-1].code != 354:
            return out
        self.send(body)
        out.append(self.reply())
        return out


def client_tls_ctx(version=None, seclevel0=False):
    """A client TLS context that does not verify (the test certificate is
    self-signed); version pins min and max."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if seclevel0:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def msg(subject, body="hello\r\n", headers="", extra=b""):
    """A small message with CRLF line ends, terminated by CRLF.CRLF."""
    text = ("From: <sender@client.example>\r\nTo: <rcpt@remote.example>\r\n"
            "Subject: %s\r\n%s\r\n%s" % (subject, headers, body))
    return text.encode() + extra + b".\r\n"


class ReplyAsserts:
    """Mixin for unittest.TestCase whose relayd is self.r."""

    def client(self):
        """A raw client to self.r's first port, closed at cleanup."""
        c = Client(self.r.port)
        self.addCleanup(c.close)
        return c

    def session(self):
        """A connection past the greeting and EHLO."""
        c = self.client()
        self.assertReply(c.greeting(), 220)
        self.assertReply(c.ehlo(), 250)
        return c

    def start_data(self, c, sender, rcpt="rcpt@remote.example"):
        """MAIL, one RCPT and DATA on c, each reply checked: the content comes next."""
        self.assertReply(c.cmd("MAIL FROM:<%s>" % sender), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<%s>" % rcpt), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)

    def assertReply(self, r, code, enh=None, msg=None):
        """code exact; enh: the exact enhanced code, or None for a reply
        that has none (354; the 220 greeting, whose text is free)."""
        self.assertIsInstance(r, Reply, msg)
        self.assertEqual(r.code, code, "%s: got %r" % (msg or "reply", r))
        self.assertEqual(r.enhanced, enh, "%s: enhanced code of %r" % (msg or "reply", r))

    def assertQueued(self, r, msg=None):
        """A `250 2.0.0 Ok: queued as QID` reply; returns QID."""
        self.assertIsInstance(r, Reply, msg)
        self.assertEqual(r.code, 250, "%s: got %r" % (msg or "end of data", r))
        self.assertIsNotNone(r.qid, "%s: not `250 2.0.0 Ok: queued as QID`: %r"
                             % (msg or "end of data", r))
        return r.qid

    def assertNotQueued(self, r, msg=None):
        self.assertNotEqual(r.code, 250, "%s: accepted: %r" % (msg or "reply", r))


# ---- the queue as relayctl and the log show it -----------------------------

def queue_messages(r):
    """The messages of `relayctl queue --json` (a list)."""
    p = r.ctl("queue", "--json")
    if p.returncode != 0:
        raise AssertionError("relayctl queue --json exited %d: %s%s"
                             % (p.returncode, p.stdout, p.stderr))
    data = json.loads(p.stdout)
    if not isinstance(data, list):
        raise AssertionError("relayctl queue --json is not an array: %r" % p.stdout[:500])
    return data


def queue_count(r, token):
    """How many queued messages mention token (e.g. in their sender)."""
    return sum(1 for m in queue_messages(r) if token in json.dumps(m))


def queue_has_qid(r, qid):
    def walk(v):
        if isinstance(v, dict):
            return any(walk(x) for x in v.values())
        if isinstance(v, list):
            return any(walk(x) for x in v)
        return v == qid
    return any(walk(m) for m in queue_messages(r))


def accepted_lines(r, sender_token):
    """(qid, sender, size, nrcpt, client) of every `QID: from=<...>,
    size=N, nrcpt=N, client=[ip]` log line whose sender contains token."""
    out = []
    for m in re.finditer(r"(\S+): from=<([^>]*)>, size=(\d+), nrcpt=(\d+), client=\[([^\]]*)\]",
                         r.log()):
        if sender_token in m.group(2):
            out.append((m.group(1), m.group(2), int(m.group(3)), int(m.group(4)), m.group(5)))
    return out


_seq = [0]


def token(prefix="t"):
    """A unique token for senders and subjects within this test process."""
    _seq[0] += 1
    return "%s%d-%d" % (prefix, os.getpid(), _seq[0])


# ---- files made once per process ------------------------------------------

_tmp = tempfile.mkdtemp(prefix="intake-test-")
atexit.register(shutil.rmtree, _tmp, True)
_cert = []


def cert():
    """(cert_path, key_path) for localhost, made once."""
    if not _cert:
        _cert.extend(make_cert(_tmp))
    return tuple(_cert)


def tls_conf():
    c, k = cert()
    return "tls-cert %s\ntls-key %s\n" % (c, k)


USERS = {"alice": "alice-secret", "bob": "b0b pass"}


def auth_users_file(users=None):
    """An auth-users file (user:hash from `openssl passwd -6`)."""
    users = users or USERS
    path = os.path.join(_tmp, "users-%d" % len(os.listdir(_tmp)))
    with open(path, "w") as f:
        for u, pw in users.items():
            h = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=pw + "\n",
                               capture_output=True, text=True, check=True, timeout=30).stdout
            f.write("%s:%s\n" % (u, h.strip()))
    return path


def dead_smarthost_conf():
    """Relays to a loopback port where nothing listens: mail stays deferred."""
    return "smarthost [127.0.0.1]:%d tls=none\nretry-min 1h\n" % free_port()


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def plain_ir(user, pw, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, pw))


# ---- a fake next hop ----------------------------------------------------------

class Upstream(FakeMX):
    """A FakeMX on a free 127.0.0.1 port, to be relayd's smarthost;
    .messages holds everything relayd relayed (mail_from, rcpt_tos, data)."""

    def __init__(self):
        super().__init__("127.0.0.1", free_port(), data_size_limit=64 * 1024 * 1024,
                         start=False)

    def conf(self):
        return "smarthost [127.0.0.1]:%d tls=none\n" % self.port

    def __enter__(self):
        self.start()
        return self

    def find(self, token):
        with self.lock:
            return [m for m in self.messages if token.encode() in m.data]

    def wait_for(self, token, timeout=30.0, count=1):
        """Waits until `count` relayed messages contain token; returns them."""
        def enough():
            found = self.find(token)
            return found if len(found) >= count else None
        return wait_until(enough, timeout, lambda: "%d message(s) with %r upstream (%d there, "
                          "%d in all)" % (count, token, len(self.find(token)), len(self.messages)),
                          step=0.1)


def headers_of(content):
    """The header block of a message (bytes) unfolded into a list of
    (name, value) strings."""
    head = content.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    head = re.sub(r"\r\n[ \t]+", " ", head)
    out = []
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        out.append((name, value.strip()))
    return out


# ---- swaks --------------------------------------------------------------------

def swaks(*args, timeout=60):
    """Runs swaks; returns (CompletedProcess, server_lines) where
    server_lines are the reply lines swaks printed."""
    p = subprocess.run(["swaks", "--timeout", "15"] + list(args), capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    # "<- " plain, "<~ " TLS, "<**" / "<~*" an error reply (plain / TLS)
    lines = [m.group(1) for m in re.finditer(r"^<(?:- |~ |\*\*|~\*)\s*(.*)$",
                                             p.stdout + "\n" + p.stderr, re.M)]
    return p, lines


def relayd(conf_extra="", **kw):
    """A Relayd running intake and queue only, with a dead smarthost:
    accepted mail stays in the queue."""
    kw.setdefault("roles", QUEUE_ROLES)
    return Relayd(conf_extra=dead_smarthost_conf() + conf_extra, **kw)


class SharedRelayd:
    """One relayd() for all the tests of a class, started in setUpClass and
    stopped (its stop checked) in tearDownClass. The class gives its
    conf_extra by relayd_conf(), called then (it may write files), and its
    listen modes in LISTENS."""
    LISTENS = None

    @classmethod
    def relayd_conf(cls):
        return ""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.r = relayd(cls.relayd_conf(), listens=cls.LISTENS)

    @classmethod
    def tearDownClass(cls):
        cls.r.cleanup()
        super().tearDownClass()

"""e2e_util.py - what the end-to-end gap tests share (test_reload,
test_crash_recovery, test_ipv6, test_smarthost_verify): rewriting the
config and reloading it, submitting with smtplib, a test CA that signs
server certificates, an IPv6 port, and a next hop that stalls in the
middle of DATA or answers with raw bytes. Waits are harness.wait_until.

    base = conf_base(r, extra)               # the harness's lines
    write_conf(r, base, "mynetworks 10.0.0.0/8\\n")
    reload(r, "sighup", ("intake", "queue"))
    qid = submit(r.port, "s@snd.test", ["a@ex.test"], subject="t1")
"""
import os
import re
import signal
import smtplib
import socket
import subprocess
import threading


# ---- config and reload ---------------------------------------------------------

def conf_base(r, extra):
    """The lines the harness wrote before conf_extra (hostname, state-dir, listen)."""
    assert r.conf.endswith(extra)
    return r.conf[:len(r.conf) - len(extra)]


def write_conf(r, base, extra):
    with open(r.conf_path, "w") as f:
        f.write(base + extra)


def reload(r, how, roles):
    """Reloads r by SIGHUP to the master or by `relayctl reload`, then waits
    until each worker in roles logged that it reloaded."""
    start = len(r.log())
    if how == "sighup":
        os.kill(r.master_pid, signal.SIGHUP)
    elif how == "relayctl":
        p = r.ctl("reload")
        if p.returncode != 0 or p.stdout != "configuration reloaded\n":
            raise AssertionError("relayctl reload: exit %d, %r %r"
                                 % (p.returncode, p.stdout, p.stderr))
    else:
        raise ValueError(how)
    r.wait_log(r"master: reloading configuration", start=start)
    for role in roles:
        r.wait_log(r"%s: configuration reloaded" % role, start=start)


# ---- submitting ------------------------------------------------------------------

def message(sender, rcpts, subject, body="Hello.\r\n"):
    return ("From: <%s>\r\nTo: %s\r\nSubject: %s\r\n\r\n%s"
            % (sender, ", ".join("<%s>" % a for a in rcpts), subject, body)).encode()


def submit(port, sender, rcpts, subject, body="Hello.\r\n", host="127.0.0.1", timeout=20):
    """One message over a new smtplib connection; returns the queue id of
    the `250 2.0.0 Ok: queued as QID`. Raises on anything else."""
    with smtplib.SMTP(host, port, timeout=timeout) as s:
        s.ehlo("client.test")
        code, text = s.mail(sender)
        if code != 250:
            raise smtplib.SMTPResponseException(code, text)
        for a in rcpts:
            code, text = s.rcpt(a)
            if code != 250:
                raise smtplib.SMTPResponseException(code, text)
        code, text = s.data(message(sender, rcpts, subject, body))
    m = re.match(rb"2\.0\.0 Ok: queued as (\S+)$", text)
    if code != 250 or m is None:
        raise smtplib.SMTPResponseException(code, text)
    return m.group(1).decode()


# ---- certificates ---------------------------------------------------------------

def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)


def make_ca(directory, name="ca"):
    """A CA certificate and key (CA:TRUE, keyCertSign); returns (cert, key)."""
    cert, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
             "-days", "2", "-subj", "/CN=relayd test CA " + name,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_leaf(directory, ca, dns_name):
    """A server certificate for dns_name (CN and the only SAN, no IP entry)
    signed by ca = (cert, key); returns (cert, key)."""
    base = os.path.join(directory, "leaf-" + dns_name)
    key, csr, cert, ext = base + ".key", base + ".csr", base + ".pem", base + ".ext"
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=DNS:%s\n"
                "extendedKeyUsage=serverAuth\n" % dns_name)
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", "/CN=" + dns_name)
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
             "-out", cert, "-days", "2", "-extfile", ext)
    return cert, key


# ---- addresses ------------------------------------------------------------------

def free_port6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


# ---- a next hop that stalls, or says what no SMTP library would ---------------

class RawMX:
    """A plain SMTP server on host:port (raw sockets, one thread per
    connection). replies: {verb: reply line} answered instead of the usual
    250 (e.g. {b"RCPT": b"451 " + raw bytes}). Its first `stall_sessions`
    sessions stall until release():
    stall="data": stop reading the DATA stream after `stall_after` bytes, so
        the sender is in the middle of a transfer the server has not seen the
        end of (the receive buffer is kept small so that the sender's kernel
        cannot absorb much);
    stall="reply": keep the whole message (as a server that committed it)
        and hold back the 250, so that the sender never learns of it.

    .stalled   Event, set when a session stalls
    .messages  complete messages kept (bytes up to the final dot, still stuffed)
    .incomplete  how many sessions ended inside DATA without the final dot
    """

    def __init__(self, host, port, stall="data", stall_sessions=1, stall_after=64 * 1024,
                 replies=None):
        assert stall in ("data", "reply")
        self.replies = replies or {}
        self.stall = stall
        self.stall_left = stall_sessions
        self.stall_after = stall_after
        self.stalled = threading.Event()
        self._release = threading.Event()
        self._stop = threading.Event()
        self.messages = []
        self.incomplete = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.threads = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def release(self):
        self._release.set()

    def stop(self):
        self._stop.set()
        self._release.set()
        self.thread.join(timeout=5)
        for t in self.threads:
            t.join(timeout=5)
        self.sock.close()

    def _accept(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._session, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _session(self, c):
        c.settimeout(30)
        with c:
            try:
                self._converse(c)
            except OSError:
                pass

    def _converse(self, c):
        buf = b""

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                chunk = c.recv(4096)
                if not chunk:
                    return None
                buf += chunk
            out, buf = buf.split(b"\r\n", 1)
            return out

        c.sendall(b"220 stall.test ESMTP\r\n")
        while not self._stop.is_set():
            cmd = line()
            if cmd is None:
                return
            verb = cmd[:4].upper()
            if verb in self.replies:
                c.sendall(self.replies[verb] + b"\r\n")
            elif verb == b"EHLO":
                c.sendall(b"250-stall.test\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n")
            elif verb == b"QUIT":
                c.sendall(b"221 2.0.0 Bye\r\n")
                return
            elif verb == b"DATA":
                c.sendall(b"354 go ahead\r\n")
                with self.lock:
                    stall = self.stall_left > 0
                    self.stall_left -= stall
                data = self._data(c, buf, stall and self.stall == "data")
                buf = b""
                if data is None:
                    with self.lock:
                        self.incomplete += 1
                    return
                with self.lock:
                    self.messages.append(data)
                if stall and self.stall == "reply":
                    self.stalled.set()
                    self._release.wait(120)
                c.sendall(b"250 2.0.0 Ok: queued\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP", b"HELO"):
                c.sendall(b"250 2.0.0 Ok\r\n")
            else:
                c.sendall(b"502 5.5.1 not here\r\n")

    def _data(self, c, data, stall):
        while b"\r\n.\r\n" not in data:
            if stall and len(data) >= self.stall_after:
                stall = False
                self.stalled.set()
                self._release.wait(120)
            chunk = c.recv(65536)
            if not chunk:
                return None
            data += chunk
        return data[:data.index(b"\r\n.\r\n") + 2]

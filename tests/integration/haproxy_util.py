"""haproxy_util.py - a real HAProxy (Debian package `haproxy`) in TCP mode
in front of relayd nodes, for the PROXY protocol tests. The test writes its
own haproxy.cfg and runs `haproxy -f CFG -db` (foreground) on loopback
ports; the system service is never used.

    with HAProxy(tmpdir, [port1, port2], send="send-proxy-v2") as hp:
        smtplib.SMTP("127.0.0.1", hp.port, source_address=("127.0.0.5", 0))
"""
import os
import shutil
import signal
import subprocess
import time

from harness import free_port, wait_port

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

CFG = """global
    maxconn 4096
defaults
    mode tcp
    # A connect refused by a dead node is tried on another one.
    option redispatch
    retries 3
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend smtp
    bind 127.0.0.1:{port}
    default_backend relays
backend relays
    balance roundrobin
{check}{servers}
"""


class HAProxy:
    """send: the server option that sends the header (send-proxy: v1,
    send-proxy-v2: v2). check=True adds HAProxy's SMTP health check sent
    with a v2 LOCAL header (check-send-proxy)."""

    def __init__(self, directory, server_ports, send="send-proxy-v2", check=False):
        self.port = free_port()
        self.path = os.path.join(directory, "haproxy-%d.cfg" % self.port)
        self.log_path = self.path + ".log"
        servers = "".join(
            "    server n%d 127.0.0.1:%d %s%s\n"
            % (i, p, send, " check check-send-proxy inter 500 fall 1 rise 1" if check else "")
            for i, p in enumerate(server_ports))
        with open(self.path, "w") as f:
            f.write(CFG.format(port=self.port, servers=servers,
                               check="    option smtpchk EHLO haproxy.test\n" if check else ""))
        p = subprocess.run([HAPROXY, "-c", "-f", self.path], capture_output=True, text=True,
                           timeout=20)
        if p.returncode != 0:
            raise AssertionError("haproxy rejects its config: %s" % (p.stdout + p.stderr))
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([HAPROXY, "-f", self.path, "-db"], stdout=self._logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_port("127.0.0.1", self.port)
        except BaseException:
            self.stop()
            raise

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._logf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

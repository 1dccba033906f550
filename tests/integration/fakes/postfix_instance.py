"""postfix_instance.py - a real Postfix (Debian's package) run for a test
with its OWN configuration, queue and log directory (postfix -c DIR), never
the system's: its smtpd listens on one loopback address and port and holds
what it receives (the queue file keeps the envelope with its DSN records,
which postcat shows), and its sendmail submits through a relayhost.

    pf = PostfixInstance(listen=("127.0.0.4", port), relayhost=("127.0.0.1", relayd_port))
    pf.sendmail(["-N", "success,failure", "-R", "hdrs", "-V", "ENV1", "-f", "s@snd.test",
                 "a@ex.test"], body)
    pf.wait_log(r"status=sent"); pf.held(); pf.postcat(qid); pf.stop()

PostfixInstance.available() says whether Postfix is installed (the tests
skip with that reason when it is not).
"""
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time

POSTFIX = "/usr/sbin/postfix"
DAEMON_DIR = "/usr/lib/postfix/sbin"

# Every service runs unchained (chroot n): the queue is in a temporary directory.
MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/spool
data_directory = {dir}/data
daemon_directory = {daemons}
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
myhostname = postfix.test
mydomain = postfix.test
mydestination =
inet_interfaces = all
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = {relayhost}
disable_dns_lookups = yes
smtp_tls_security_level = none
smtpd_tls_security_level = none
# What smtpd receives is held, not relayed: the queue file is what the test reads.
smtpd_recipient_restrictions = check_client_access static:HOLD, permit_mynetworks, reject
smtpd_relay_restrictions = permit_mynetworks, reject
# The SMTP dialogue with relayd in the log: the DSN parameters it sent.
debug_peer_list = 127.0.0.0/8
debug_peer_level = 1
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtp_connect_timeout = 5s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
"""


class PostfixInstance:
    @staticmethod
    def available():
        return os.path.exists(POSTFIX) and os.path.isdir(DAEMON_DIR)

    def __init__(self, listen, relayhost):
        self.dir = tempfile.mkdtemp(prefix="relayd-postfix.")
        os.chmod(self.dir, 0o755)
        addr, port = listen
        with open(os.path.join(self.dir, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(dir=self.dir, daemons=DAEMON_DIR, addr=addr,
                                   relayhost="[%s]:%d" % relayhost))
        with open(os.path.join(self.dir, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen="%s:%d" % (addr, port)))
        self.log = os.path.join(self.dir, "maillog")
        os.mkdir(os.path.join(self.dir, "spool"), 0o755)
        os.mkdir(os.path.join(self.dir, "data"), 0o700)
        pw = pwd.getpwnam("postfix")
        os.chown(os.path.join(self.dir, "data"), pw.pw_uid, pw.pw_gid)
        try:
            self._run([POSTFIX, "-c", self.dir, "check"])
        except AssertionError:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.started = True
        self._run([POSTFIX, "-c", self.dir, "start"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if "daemon started" in self.log_text():
                return
            time.sleep(0.1)
        raise AssertionError("postfix did not start:\n" + self.log_text())

    def _run(self, argv, input=None):
        p = subprocess.run(argv, input=input, capture_output=True, timeout=30)
        if p.returncode != 0:
            raise AssertionError("%s: %s %s" % (" ".join(argv), p.stdout.decode(errors="replace"),
                                                p.stderr.decode(errors="replace")))
        return p.stdout.decode(errors="replace")

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, rx, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(rx, self.log_text())
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("no %r in the Postfix log:\n%s" % (rx, self.log_text()))
            time.sleep(0.2)

    def sendmail(self, args, body):
        """Postfix's own sendmail with this instance's config."""
        return self._run(["/usr/sbin/sendmail", "-C", self.dir] + list(args), input=body)

    def held(self):
        """Queue ids in the hold queue."""
        out = []
        for root, _, files in os.walk(os.path.join(self.dir, "spool", "hold")):
            out.extend(files)
        return out

    def postcat(self, qid):
        return self._run(["/usr/sbin/postcat", "-c", self.dir, "-e", "-q", qid])

    def stop(self):
        if getattr(self, "started", False):
            subprocess.run([POSTFIX, "-c", self.dir, "stop"], capture_output=True, timeout=30)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

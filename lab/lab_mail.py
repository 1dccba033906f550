"""lab_mail.py - the lab's own SMTP servers, the last hop of every message:
each accepted message is written, one file per recipient, into a Maildir
under the lab folder (LAB/mail/DOMAIN/USER/new/), as a local delivery agent
would, with Return-Path:, Delivered-To: and its own Received: on top.

Three behaviours, one per listener:
  mailbox   accepts every recipient (the organisations' internal mail store)
  greylist  answers 451 4.7.1 to a (client, sender, recipient) it has not
            seen for at least `delay` seconds, then accepts it (grey.lab)
  strict    answers 550 5.1.1 to the local parts it is given (strict.lab)

These are servers for people to look at, not fakes that assert: they log
every reply to LAB/log/NAME.log.
"""
import itertools
import logging
import os
import threading
import time
from email.utils import formatdate

from aiosmtpd.controller import Controller

logging.getLogger("mail.log").setLevel(logging.CRITICAL)

_seq = itertools.count(1)


def maildir_deliver(root, rcpt, mail_from, data, received):
    """Writes data for rcpt into root/DOMAIN/LOCAL (a Maildir: tmp, then a
    rename into new, so a reader never sees half a message); returns the path."""
    local, _, domain = rcpt.rpartition("@")
    safe = lambda s: "".join(c if c.isalnum() or c in "-._+" else "_" for c in s) or "_"
    box = os.path.join(root, safe(domain.lower()), safe(local.lower()))
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(box, sub), exist_ok=True)
    name = "%d.P%dQ%d.mailbox.lab" % (time.time(), os.getpid(), next(_seq))
    head = ("Return-Path: <%s>\nDelivered-To: %s\n%s" % (mail_from, rcpt, received)).encode()
    body = data.replace(b"\r\n", b"\n")
    tmp = os.path.join(box, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(head + body)
        f.flush()
        os.fsync(f.fileno())
    final = os.path.join(box, "new", name)
    os.rename(tmp, final)
    return final


class _Handler:
    def __init__(self, server):
        self.s = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.s.rcpt_reply(session.peer[0], _bare(envelope.mail_from), address)
        self.s.log("RCPT TO:<%s> from %s: %s" % (address, session.peer[0], reply))
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        qid = "L%06d" % next(_seq)
        helo = session.host_name or "unknown"
        for rcpt in envelope.rcpt_tos:
            received = ("Received: from %s (%s [%s])\n\tby %s (relayd lab maildir) with ESMTP"
                        " id %s\n\tfor <%s>; %s\n" % (helo, helo, session.peer[0],
                                                    self.s.hostname, qid, rcpt,
                                                    formatdate(localtime=False)))
            path = maildir_deliver(self.s.maildir, rcpt, _bare(envelope.mail_from),
                                   envelope.original_content or envelope.content, received)
            self.s.log("%s: from=<%s> to=<%s> delivered to %s" % (
                qid, envelope.mail_from, rcpt, os.path.relpath(path, self.s.maildir)))
        return "250 2.0.0 Ok: delivered as %s" % qid


class LabMailServer:
    """One listener: host, port, kind ("mailbox", "greylist", "strict")."""

    def __init__(self, name, host, port, maildir, logfile, hostname, kind="mailbox",
                 delay=5.0, reject=()):
        self.name, self.kind, self.delay = name, kind, delay
        self.reject = {r.lower() for r in reject}
        self.maildir, self.hostname = maildir, hostname
        self.seen = {}
        self.lock = threading.Lock()
        self._log = open(logfile, "a", buffering=1)
        self.ctl = Controller(_Handler(self), hostname=host, port=port,
                              server_hostname=hostname, ready_timeout=10.0)
        self.ctl.start()

    def log(self, text):
        self._log.write("%s %s: %s\n" % (time.strftime("%H:%M:%S"), self.name, text))

    def rcpt_reply(self, client, sender, rcpt):
        local = rcpt.rpartition("@")[0].lower()
        if self.kind == "strict" and local in self.reject:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % rcpt
        if self.kind == "greylist":
            now = time.monotonic()
            with self.lock:
                first = self.seen.setdefault((client, sender.lower(), rcpt.lower()), now)
            wait = self.delay - (now - first)
            if wait > 0:
                return ("451 4.7.1 <%s>: Recipient address rejected: Greylisted, "
                        "try again in %d seconds" % (rcpt, int(wait + 0.999)))
        return "250 2.1.5 Ok"

    def stop(self):
        try:
            self.ctl.stop()
        finally:
            self._log.close()


def _bare(addr):
    """aiosmtpd gives the null sender as "<>": the address itself is ""."""
    return (addr or "").strip("<>")

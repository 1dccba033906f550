"""dlv_mx.py - fake MX servers for the delivery tests.

    from fakes.dlv_mx import FakeMX, Greeter421
    with FakeMX("127.0.0.2", port, rcpt={"bad": "550 5.1.1 User unknown"}) as mx:
        ...
        mx.wait_messages(1)
        mx.messages[0].rcpt_tos, .mail_from, .data (bytes), .tls, .auth_user

FakeMX(host, port, rcpt=None, data=None, mail=None, tls_cert=None,
       auth=None, ehlo_extra=None)
    An aiosmtpd server with scripted replies:
    rcpt   {local-part: reply}; others get "250 2.1.5 Ok"
    data   a list of replies to the end of DATA, used in order, then
           "250 2.0.0 Ok: queued as FAKE"
    mail   reply to MAIL FROM (default 250)
    tls_cert (cert, key): STARTTLS is offered
    auth   {user: password}: AUTH PLAIN/LOGIN offered, over TLS only
    first_data_delay  seconds the first end-of-DATA reply is held back
    data_delay  seconds every end-of-DATA reply is held back; .max_active
                counts the transactions that were in DATA at the same time,
                .intervals their (start, end) monotonic times
    tls_broken  STARTTLS is offered but no handshake can succeed
    smtps  TLS from the first byte (with tls_cert) instead of STARTTLS
    auth_exclude  mechanisms not offered, e.g. ["PLAIN"] to force LOGIN
    data_size_limit  the largest message accepted (aiosmtpd's default: 32 MiB)
    smtputf8  SMTPUTF8 offered and taken (default, as aiosmtpd's Controller does); False: refused
    ehlo_drop  EHLO keywords not offered, e.g. ["8BITMIME"] for an old server
    .mail_options  the parameters of every MAIL FROM
    .sessions   how many SMTP sessions sent MAIL (connection reuse)
    .attempts   every (mail_from, rcpt list, reply) end-of-DATA attempt
Greeter421(host, port): accepts and says "421 4.3.2 ..." then closes.
"""
import asyncio
import logging
import socket
import ssl
import threading
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# aiosmtpd logs every failed handshake with a traceback: the tests check outcomes instead.
logging.getLogger("mail.log").setLevel(logging.CRITICAL)


class Message:
    def __init__(self, mail_from, rcpt_tos, data, tls, auth_user, peer):
        self.mail_from = mail_from
        self.rcpt_tos = rcpt_tos
        self.data = data
        self.tls = tls
        self.auth_user = auth_user
        self.peer = peer


class _Handler:
    def __init__(self, fake):
        self.fake = fake

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.fake.lock:
            self.fake._session_ids.add(id(session))
            self.fake.mail_options.append(list(mail_options))
        if self.fake.mail:
            return self.fake.mail
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        reply = self.fake.rcpt.get(local, "250 2.1.5 Ok")
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        with self.fake.lock:
            self.fake.active += 1
            self.fake.max_active = max(self.fake.max_active, self.fake.active)
        started = time.monotonic()
        try:
            if self.fake.first_data_delay and not self.fake.attempts:
                # Holds the first message so that the sender's next ones queue up.
                await asyncio.sleep(self.fake.first_data_delay)
            if self.fake.data_delay:
                await asyncio.sleep(self.fake.data_delay)
        finally:
            with self.fake.lock:
                self.fake.active -= 1
                self.fake.intervals.append((started, time.monotonic()))
        with self.fake.lock:
            reply = self.fake.data.pop(0) if self.fake.data else "250 2.0.0 Ok: queued as FAKE"
            self.fake.attempts.append((envelope.mail_from, list(envelope.rcpt_tos), reply))
            if reply.startswith("2"):
                user = getattr(session, "auth_data", None)
                if isinstance(user, LoginPassword):
                    user = user.login.decode()
                self.fake.messages.append(Message(
                    envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                    or envelope.content,
                    server.transport.get_extra_info("ssl_object") is not None, user,
                    session.peer))
        return reply


class _DropHandler(_Handler):
    """A handler whose EHLO reply leaves out fake.ehlo_drop."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        drop = [k.upper() for k in self.fake.ehlo_drop]
        kept = [r for r in responses if r[4:].split(" ")[0].upper() not in drop]
        return [r[:3] + "-" + r[4:] for r in kept[:-1]] + [kept[-1][:3] + " " + kept[-1][4:]]


class FakeMX:
    def __init__(self, host, port, rcpt=None, data=None, mail=None, tls_cert=None,
                 auth=None, first_data_delay=0.0, data_delay=0.0, tls_broken=False,
                 smtps=False,
                 auth_exclude=None, data_size_limit=None, smtputf8=True, start=True,
                 ehlo_drop=None):
        self.host = host
        self.port = port
        self.rcpt = dict(rcpt or {})
        self.data = list(data or [])
        self.mail = mail
        self.first_data_delay = first_data_delay
        self.data_delay = data_delay
        self.active = 0
        self.max_active = 0
        self.intervals = []
        self.messages = []
        self.attempts = []
        self.mail_options = []
        self._session_ids = set()
        self.lock = threading.Lock()
        kwargs = {}
        if data_size_limit:
            kwargs["data_size_limit"] = data_size_limit
        kwargs["enable_SMTPUTF8"] = bool(smtputf8)
        if tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls_cert)
            if tls_broken:
                # Nothing relayd accepts (it wants TLS 1.2 or newer): the handshake fails.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    ctx.minimum_version = ssl.TLSVersion.TLSv1
                    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            if smtps:
                kwargs["ssl_context"] = ctx
            else:
                kwargs["tls_context"] = ctx
        if auth:
            users = dict(auth)

            def authenticator(server, session, envelope, mechanism, data):
                if isinstance(data, LoginPassword) and \
                        users.get(data.login.decode()) == data.password.decode():
                    return AuthResult(success=True, auth_data=data)
                return AuthResult(success=False, handled=False)
            kwargs["authenticator"] = authenticator
            # aiosmtpd only counts STARTTLS as TLS; smtps is TLS all along.
            kwargs["auth_require_tls"] = not smtps
            if auth_exclude:
                kwargs["auth_exclude_mechanism"] = list(auth_exclude)
        self.ehlo_drop = list(ehlo_drop or [])
        handler = _DropHandler(self) if self.ehlo_drop else _Handler(self)
        self.controller = Controller(handler, hostname=host, port=port,
                                     ready_timeout=10, **kwargs)
        if start:
            self.start()

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        try:
            self.controller.stop()
        except Exception:
            pass

    @property
    def sessions(self):
        return len(self._session_ids)

    def wait_messages(self, n, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError("%s:%d got %d message(s), expected %d" %
                             (self.host, self.port, len(self.messages), n))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class Greeter421:
    """Says 421 at connect and hangs up: a host that refuses to talk."""

    def __init__(self, host, port, line=b"421 4.3.2 Service not available, closing\r\n"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.line = line
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            try:
                c.sendall(self.line)
                time.sleep(0.1)
            except OSError:
                pass
            c.close()

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=5)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

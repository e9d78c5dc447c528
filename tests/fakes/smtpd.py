#!/usr/bin/python3
"""A real SMTP server for the tests, on aiosmtpd (Debian python3-aiosmtpd).

Stores each accepted message, raw bytes as received, in a Maildir
(--maildir DIR: DIR/{tmp,new,cur}, delivered into new/) and appends one
JSON line per accepted message to --log FILE:
  {"mail_from","rcpt_tos","file","auth_user","tls","size","time"}

Options:
  --port N              127.0.0.1 port (0 = pick a free one)
  --maildir DIR         where accepted messages go
  --log FILE            JSON line per accepted message
  --auth USER:PASS      require AUTH PLAIN/LOGIN with exactly these
                        credentials (wrong: 535; MAIL before AUTH: 530)
  --tls CERT,KEY        offer STARTTLS with this certificate
  --require-tls         refuse everything but EHLO/NOOP/QUIT/STARTTLS
                        before STARTTLS (530); needs --tls
  --reject-rcpt REGEX   RCPT addresses matching (re.search) get 550 5.1.1
  --defer N             the first N transactions (per server) get
                        451 4.3.0, then mail is accepted
  --defer-at STAGE      where --defer answers 451: mail, rcpt or data
                        (default data: the answer to the end of DATA)
  --delay-ms N          wait N ms (asynchronously) before answering the
                        end of DATA
  --reject-all          550 5.7.1 to every DATA
Prints "ready PORT" on stdout when listening.

AUTH: with --tls, AUTH is offered only after STARTTLS (aiosmtpd's
auth_require_tls, as real servers do; AUTH before it gets 538).  Without
--tls, AUTH is allowed in clear text so a plain local relay can be tested.
"""

import argparse
import asyncio
import itertools
import json
import logging
import os
import re
import signal
import socket
import ssl
import sys
import time
import warnings

from aiosmtpd.controller import UnthreadedController
from aiosmtpd.smtp import AuthResult


def parse_args(argv):
    p = argparse.ArgumentParser(description="Test SMTP server (aiosmtpd)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--maildir")
    p.add_argument("--log")
    p.add_argument("--auth", metavar="USER:PASS")
    p.add_argument("--tls", metavar="CERT,KEY")
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--reject-rcpt", metavar="REGEX")
    p.add_argument("--defer", type=int, default=0, metavar="N")
    p.add_argument("--defer-at", choices=("mail", "rcpt", "data"),
                   default="data")
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--reject-all", action="store_true")
    a = p.parse_args(argv)
    if a.require_tls and not a.tls:
        p.error("--require-tls needs --tls CERT,KEY")
    if a.auth is not None and ":" not in a.auth:
        p.error("--auth takes USER:PASS")
    if a.tls is not None and len(a.tls.split(",")) != 2:
        p.error("--tls takes CERT,KEY")
    if a.reject_rcpt is not None:
        try:
            a.reject_rcpt = re.compile(a.reject_rcpt)
        except re.error as e:
            p.error("--reject-rcpt: %s" % e)
    return a


class Maildir:
    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.counter = itertools.count(1)
        self.host = socket.gethostname().replace("/", "\\057") \
            .replace(":", "\\072") or "localhost"
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)

    def store(self, data):
        n = next(self.counter)
        now = time.time()
        name = "%d.M%06dP%dQ%d.%s" % (int(now), int((now % 1) * 1e6),
                                      os.getpid(), n, self.host)
        tmp = os.path.join(self.path, "tmp", name)
        new = os.path.join(self.path, "new", name)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.rename(tmp, new)
        return new


class Handler:
    def __init__(self, args):
        self.args = args
        self.deferred = 0
        self.maildir = Maildir(args.maildir) if args.maildir else None
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None

    def _maybe_defer(self, stage):
        if self.args.defer_at == stage and self.deferred < self.args.defer:
            self.deferred += 1
            return "451 4.3.0 Temporary failure, please try again later"
        return None

    async def handle_MAIL(self, server, session, envelope, address, options):
        deferred = self._maybe_defer("mail")
        if deferred:
            return deferred
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        rx = self.args.reject_rcpt
        if rx is not None and rx.search(address):
            return "550 5.1.1 <%s>: Recipient address rejected: " \
                   "User unknown" % address
        deferred = self._maybe_defer("rcpt")
        if deferred:
            return deferred
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.args.delay_ms > 0:
            await asyncio.sleep(self.args.delay_ms / 1000.0)
        deferred = self._maybe_defer("data")
        if deferred:
            return deferred
        if self.args.reject_all:
            return "550 5.7.1 Message rejected"
        data = envelope.original_content or b""
        # Synchronous on purpose: a worker thread per file measured slower.
        path = self.maildir.store(data) if self.maildir else None
        if self.log is not None:
            user = getattr(session.auth_data, "login", None)
            if isinstance(user, bytes):
                user = user.decode("utf-8", "replace")
            self.log.write(json.dumps({
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "file": path,
                "auth_user": user,
                "tls": session.ssl is not None,
                "size": len(data),
                "time": int(time.time() * 1000),
            }) + "\n")
            self.log.flush()
        return "250 2.0.0 OK: queued as %s" % (
            os.path.basename(path) if path else "nowhere")


def make_authenticator(user, password):
    want = (user.encode(), password.encode())

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (mechanism in ("PLAIN", "LOGIN")
              and (auth_data.login, auth_data.password) == want)
        return AuthResult(success=ok, handled=False,
                          auth_data=auth_data if ok else None)

    return authenticator


def main(argv):
    args = parse_args(argv)
    kwargs = {}
    if args.tls:
        cert, key = args.tls.split(",")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        kwargs["tls_context"] = ctx
        kwargs["require_starttls"] = args.require_tls
    if args.auth is not None:
        user, _, password = args.auth.partition(":")
        kwargs["authenticator"] = make_authenticator(user, password)
        kwargs["auth_required"] = True
    # Without TLS there is nothing to wait for: allow AUTH in clear text
    # (aiosmtpd's default refuses it with 538 and hides it from EHLO).
    kwargs["auth_require_tls"] = bool(args.tls)
    warnings.filterwarnings("ignore", message="Requiring AUTH while not")
    # aiosmtpd logs warnings of its own on every AUTH (a deprecated
    # login_data it sets itself) and at start-up: keep stderr for real errors.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    loop = asyncio.new_event_loop()
    # UnthreadedController, not Controller: the threaded one connects to
    # itself on self.port after binding, which cannot work with port 0.
    ctl = UnthreadedController(
        Handler(args), loop=loop, hostname="127.0.0.1", port=args.port,
        server_hostname="localhost", **kwargs)
    ctl.begin()
    port = ctl.server.sockets[0].getsockname()[1]
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    print("ready %d" % port, flush=True)
    try:
        loop.run_forever()
    finally:
        ctl.server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Scripted SMTP client for tests: shows each reply code of one transaction.

  smtpclient.py --port N [--starttls] [--cafile F | --insecure]
                [--auth USER:PASS] [--auth-mech PLAIN|LOGIN]
                --from ADDR --to ADDR [--to ADDR..] [--count N]
                [--subject S] [--body TEXT]

Prints one line per step, "STEP CODE text", e.g.
  EHLO 250 localhost
  STARTTLS 220 Ready to start TLS
  AUTH 235 2.7.0 Authentication successful
  MAIL 250 OK
  RCPT 550 5.1.1 <x@y>: Recipient address rejected: User unknown
  DATA 250 2.0.0 OK: queued as ...
and stops after the first step answered with 4xx/5xx (after RCPT: only
when no recipient was accepted).  --count N sends N messages on the same
connection (RSET after a failed one).  Exit status 0 if every message
was accepted, 1 otherwise, 2 on connection or TLS errors.
"""

import argparse
import base64
import smtplib
import ssl
import sys


def say(step, code, msg):
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    print("%s %d %s" % (step, code, " ".join(msg.split())), flush=True)


def auth(s, mech, user, password):
    if mech == "PLAIN":
        blob = base64.b64encode(("\0%s\0%s" % (user, password)).encode())
        return s.docmd("AUTH", "PLAIN " + blob.decode())
    code, msg = s.docmd("AUTH", "LOGIN")
    if code != 334:
        return code, msg
    code, msg = s.docmd(base64.b64encode(user.encode()).decode())
    if code != 334:
        return code, msg
    return s.docmd(base64.b64encode(password.encode()).decode())


def one_message(s, a, n):
    code, msg = s.mail(a.mail_from)
    say("MAIL", code, msg)
    if code >= 400:
        return False
    accepted = 0
    for rcpt in a.to:
        code, msg = s.rcpt(rcpt)
        say("RCPT", code, msg)
        accepted += code < 400
    if not accepted:
        return False
    body = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n%s\r\n"
            % (a.mail_from, ", ".join(a.to), a.subject
               + (" %d" % n if a.count > 1 else ""), a.body))
    try:
        code, msg = s.data(body.encode())
    except smtplib.SMTPDataError as e:
        code, msg = e.smtp_code, e.smtp_error
    say("DATA", code, msg)
    return code < 400


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--cafile")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("--auth", metavar="USER:PASS")
    p.add_argument("--auth-mech", choices=("PLAIN", "LOGIN"), default="PLAIN")
    p.add_argument("--from", dest="mail_from", default="sender@example.com")
    p.add_argument("--to", action="append", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--subject", default="smtpclient test")
    p.add_argument("--body", default="Hello from smtpclient.")
    a = p.parse_args()
    try:
        s = smtplib.SMTP(a.host, a.port, local_hostname="client.test",
                         timeout=30)
        code, msg = s.ehlo()
        say("EHLO", code, msg.splitlines()[0] if msg else b"")
        if a.starttls:
            ctx = ssl.create_default_context(cafile=a.cafile)
            if a.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            code, msg = s.docmd("STARTTLS")
            say("STARTTLS", code, msg)
            if code != 220:
                return 1
            s.sock = ctx.wrap_socket(s.sock, server_hostname=a.host
                                     if a.host != "127.0.0.1" else "localhost")
            s.file = None
            s.helo_resp = s.ehlo_resp = None
            s.esmtp_features = {}
            s.does_esmtp = False
            code, msg = s.ehlo()
            say("EHLO", code, msg.splitlines()[0] if msg else b"")
        if a.auth is not None:
            user, _, password = a.auth.partition(":")
            code, msg = auth(s, a.auth_mech, user, password)
            say("AUTH", code, msg)
            if code >= 400:
                return 1
        ok = True
        for n in range(1, a.count + 1):
            if not one_message(s, a, n):
                ok = False
                code, msg = s.rset()
        try:
            s.quit()
        except smtplib.SMTPException:
            pass
        return 0 if ok else 1
    except (OSError, smtplib.SMTPException) as e:
        print("ERROR %s: %s" % (type(e).__name__, e), flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())

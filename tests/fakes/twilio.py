#!/usr/bin/python3
"""Loopback fake of the Twilio Messages API.

POST /2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP basic auth
SID:TOKEN (and the SID in the path), form-encoded To, From (or
MessagingServiceSid), Body (or MediaUrl).  Errors carry Twilio's JSON error
shape {"code","message","more_info","status"} and codes:
  20003 bad credentials (401), 20404 unknown resource (404),
  21604 To missing, 21603 From missing, 21602 Body missing,
  21211 To not E.164 (+ and 8-15 digits), 21617 Body over 1600 characters,
  20429 too many requests (429, Retry-After), 20503 unavailable (503).
Success: 201 with a message resource (sid "SM" + 32 hex, status "queued").

Options: --port, --log FILE, --sid SID, --token TOKEN,
--fail STATUS:COUNT (repeatable), --tls CERT,KEY.  Prints "ready PORT".
"""

import base64
import binascii
import email.utils
import re
import secrets
import urllib.parse

import fakelib

PATH_RE = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
E164_RE = re.compile(r"^\+[0-9]{8,15}$")

FAIL_CODES = {
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


def twilio_error(status, code, message):
    return {"code": code, "message": message,
            "more_info": "https://www.twilio.com/docs/errors/%d" % code,
            "status": status}


class Twilio(fakelib.Handler):
    fails = None

    def handle_any(self):
        raw = self.read_body()
        status, resp, headers = self.decide(raw)
        self.reply(status, resp, extra_headers=headers)
        self.jlog.write({
            "time": fakelib.now_ms(),
            "method": self.command,
            "path": self.path,
            "headers": self.lower_headers(),
            "body": raw.decode("utf-8", "replace"),
            "form": self.form(raw),
            "status": status,
            "response": resp,
        })

    def form(self, raw):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0]
        if ctype.strip().lower() != "application/x-www-form-urlencoded":
            return {}
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8", "replace"),
                                       keep_blank_values=True)
        return {k: v for k, v in pairs}

    def authorized(self, path_sid):
        o = self.opts
        auth = self.headers.get("Authorization") or ""
        scheme, _, cred = auth.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, pw = base64.b64decode(cred.strip(), validate=True) \
                .decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == o.sid and pw == o.token and path_sid == o.sid

    def decide(self, raw):
        m = PATH_RE.match(self.path.split("?", 1)[0])
        if not m:
            return 404, twilio_error(
                404, 20404, "The requested resource %s was not found"
                % self.path), None
        if self.command != "POST":
            return 405, twilio_error(405, 20004, "Method not allowed"), None
        failing = self.fails.next()
        if failing is not None:
            code, msg = FAIL_CODES.get(failing, (20500, "Error"))
            headers = {"Retry-After": "1"} if failing in (429, 503) else None
            return failing, twilio_error(failing, code, msg), headers
        if not self.authorized(urllib.parse.unquote(m.group(1))):
            return 401, twilio_error(401, 20003, "Authenticate"), \
                {"WWW-Authenticate": 'Basic realm="Twilio API"'}
        f = self.form(raw)
        to, frm = f.get("To", ""), f.get("From", "")
        msid, body = f.get("MessagingServiceSid", ""), f.get("Body", "")
        media = f.get("MediaUrl", "")
        if not to:
            return 400, twilio_error(
                400, 21604, "A 'To' phone number is required."), None
        if not frm and not msid:
            return 400, twilio_error(
                400, 21603, "A 'From' phone number is required."), None
        if not body and not media:
            return 400, twilio_error(
                400, 21602, "Message body is required."), None
        if not E164_RE.match(to):
            return 400, twilio_error(
                400, 21211,
                "The 'To' number %s is not a valid phone number." % to), None
        if len(body) > 1600:
            return 400, twilio_error(
                400, 21617, "The concatenated message body exceeds the "
                "1600 character limit."), None
        return 201, self.resource(to, frm, msid, body), None

    def resource(self, to, frm, msid, body):
        sid = "SM" + secrets.token_hex(16)
        acct = self.opts.sid
        now = email.utils.formatdate(usegmt=True).replace("GMT", "+0000")
        uri = "/2010-04-01/Accounts/%s/Messages/%s.json" % (acct, sid)
        return {
            "account_sid": acct, "api_version": "2010-04-01", "body": body,
            "date_created": now, "date_sent": None, "date_updated": now,
            "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": frm or None,
            "messaging_service_sid": msid or None, "num_media": "0",
            "num_segments": str(max(1, (len(body) + 152) // 153)),
            "price": None, "price_unit": "USD", "sid": sid,
            "status": "queued", "to": to, "uri": uri,
            "subresource_uris": {"media": uri[:-5] + "/Media.json"},
        }

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


def main():
    p = fakelib.base_parser("Fake Twilio Messages API")
    p.add_argument("--sid", default="AC" + "0" * 32)
    p.add_argument("--token", default="test-token")
    p.add_argument("--fail", type=fakelib.fail_spec, action="append",
                   metavar="STATUS:COUNT")
    args = p.parse_args()
    Twilio.fails = fakelib.FailPlan(args.fail)
    return fakelib.serve(Twilio, args)


if __name__ == "__main__":
    fakelib.main_guard(main)

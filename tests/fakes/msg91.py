#!/usr/bin/python3
"""Loopback fake of the Msg91 Flow API v5 (POST /api/v5/flow/).

Checks each request the way the real API does and answers like it:
  - only POST /api/v5/flow/ exists (anything else: 404);
  - header `authkey` must equal --authkey, else 401 type:error;
  - Content-Type must be application/json, body a JSON object;
  - template_id must equal --template;
  - short_url, when present, must be the string "0" or "1";
  - recipients: non-empty array of objects; each `mobiles` is 10-15 digits
    without "+"; every other recipient field (template variable) a string
    or number.
Success: 200 {"type":"success","message":"<24 hex request id>"}.

Options: --port, --log FILE, --authkey KEY, --template ID,
--fail STATUS:COUNT (repeatable; 429/503 carry Retry-After: 1),
--error-body [MESSAGE] (valid requests get 200 with type:error, as the API
does e.g. for an unapproved template), --tls CERT,KEY.
Prints "ready PORT" when listening.
"""

import json
import re
import secrets

import fakelib

FLOW_PATH = "/api/v5/flow/"
MOBILE_RE = re.compile(r"^[0-9]{10,15}$")

FAIL_MESSAGES = {
    418: "Your IP is not whitelisted",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service temporarily unavailable",
    504: "Gateway timeout",
}


def error(message):
    return {"type": "error", "message": message}


def validate(body, template):
    """Returns None when the flow request is valid, else an error message."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object"
    tid = body.get("template_id")
    if tid is None or tid == "":
        return "template_id is required"
    if not isinstance(tid, str) or tid != template:
        return "Invalid template id"
    if "short_url" in body and body["short_url"] not in ("0", "1"):
        return "short_url must be \"0\" or \"1\""
    recips = body.get("recipients")
    if recips is None:
        return "recipients is required"
    if not isinstance(recips, list) or not recips:
        return "recipients must be a non-empty array"
    for i, r in enumerate(recips):
        if not isinstance(r, dict):
            return "recipients[%d] must be an object" % i
        mob = r.get("mobiles")
        if mob is None:
            return "recipients[%d].mobiles is required" % i
        if not isinstance(mob, str) or not MOBILE_RE.match(mob):
            return ("Invalid mobile number %s: use the international format, "
                    "digits only, without +" % json.dumps(mob))
        for k, v in r.items():
            if k == "mobiles":
                continue
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                return "recipients[%d].%s must be a string" % (i, k)
    return None


class Msg91(fakelib.Handler):
    fails = None

    def handle_any(self):
        raw = self.read_body()
        status, resp, headers = self.decide(raw)
        self.reply(status, resp, extra_headers=headers)
        try:
            parsed = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            parsed = raw.decode("utf-8", "replace")
        self.jlog.write({
            "time": fakelib.now_ms(),
            "method": self.command,
            "path": self.path,
            "headers": self.lower_headers(),
            "body": parsed,
            "status": status,
            "response": resp,
        })

    def decide(self, raw):
        o = self.opts
        if self.command != "POST" or self.path.split("?", 1)[0] != FLOW_PATH:
            return 404, error("Not found"), None
        failing = self.fails.next()
        if failing is not None:
            headers = {"Retry-After": "1"} if failing in (429, 503) else None
            return failing, error(FAIL_MESSAGES.get(failing, "Error")), headers
        if self.headers.get("authkey") != o.authkey:
            return 401, error("Authentication failure"), None
        ctype = (self.headers.get("Content-Type") or "").split(";")[0]
        if ctype.strip().lower() != "application/json":
            return 400, error("Content-Type must be application/json"), None
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return 400, error("Invalid JSON in request body"), None
        problem = validate(body, o.template)
        if problem:
            return 400, error(problem), None
        if o.error_body is not None:
            return 200, error(o.error_body), None
        return 200, {"type": "success", "message": secrets.token_hex(12)}, None

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


def main():
    p = fakelib.base_parser("Fake Msg91 Flow API v5")
    p.add_argument("--authkey", default="test-authkey")
    p.add_argument("--template", default="test-template")
    p.add_argument("--fail", type=fakelib.fail_spec, action="append",
                   metavar="STATUS:COUNT")
    p.add_argument("--error-body", nargs="?", metavar="MESSAGE",
                   const="Flow not found or template not approved")
    args = p.parse_args()
    Msg91.fails = fakelib.FailPlan(args.fail)
    return fakelib.serve(Msg91, args)


if __name__ == "__main__":
    fakelib.main_guard(main)

#!/usr/bin/python3
"""Generic HTTP endpoint for handler tests.

Any method, any path.  Answers the statuses of --statuses in sequence (the
last one repeats; default 200), after --delay-ms, with Retry-After on 429
and 503 when --retry-after is given.  Each request is appended to --log as
one JSON line {"time","method","path","headers","body","status"} (headers
lower-cased, body as text).

Options: --port, --log FILE, --statuses LIST, --delay-ms N,
--retry-after SECONDS, --tls CERT,KEY.  Prints "ready PORT".
"""

import argparse
import threading
import time

import fakelib


def status_list(text):
    try:
        out = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected e.g. 503,503,200")
    if not out or any(not 100 <= s <= 599 for s in out):
        raise argparse.ArgumentTypeError("statuses must be 100-599")
    return out


class Sink(fakelib.Handler):
    lock = threading.Lock()
    served = 0

    def next_status(self):
        seq = self.opts.statuses
        with Sink.lock:
            i = Sink.served
            Sink.served += 1
        return seq[min(i, len(seq) - 1)]

    def handle_any(self):
        raw = self.read_body()
        status = self.next_status()
        if self.opts.delay_ms > 0:
            time.sleep(self.opts.delay_ms / 1000.0)
        headers = {}
        if status in (429, 503) and self.opts.retry_after is not None:
            headers["Retry-After"] = self.opts.retry_after
        if 200 <= status < 300:
            resp = {"status": status, "ok": True}
        else:
            resp = {"status": status, "error": "injected by httpsink"}
        if status in (204, 304):
            resp = b""
        self.reply(status, resp, extra_headers=headers)
        self.jlog.write({
            "time": fakelib.now_ms(),
            "method": self.command,
            "path": self.path,
            "headers": self.lower_headers(),
            "body": raw.decode("utf-8", "replace"),
            "status": status,
        })

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any
    do_OPTIONS = handle_any


def main():
    p = fakelib.base_parser("Generic HTTP sink")
    p.add_argument("--statuses", type=status_list, default=[200])
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--retry-after", metavar="SECONDS")
    args = p.parse_args()
    return fakelib.serve(Sink, args)


if __name__ == "__main__":
    fakelib.main_guard(main)

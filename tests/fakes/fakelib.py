"""Shared plumbing for the loopback HTTP fakes (msg91.py, twilio.py, httpsink.py).

Standard library only; run with /usr/bin/python3.  Every fake:
  - listens on 127.0.0.1 (--port 0 picks a free port),
  - prints exactly one line "ready PORT" on stdout once it accepts connections,
  - appends one JSON line per request to --log FILE (thread-safe, flushed),
  - optionally speaks TLS (--tls CERT,KEY),
  - exits quietly on SIGTERM/SIGINT.
"""

import argparse
import json
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Benchmarks open dozens of connections at once; the default backlog of 5
    # makes connect() stall under load.
    request_queue_size = 512


class JsonLog:
    """Appends JSON lines to a file from many threads, one write per line."""

    def __init__(self, path):
        self._lock = threading.Lock()
        self._fh = open(path, "a", encoding="utf-8") if path else None

    def write(self, record):
        if self._fh is None:
            return
        line = json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()


class FailPlan:
    """--fail STATUS:COUNT (repeatable): the first COUNT requests get STATUS.

    Several plans run one after another: --fail 503:1 --fail 429:2 answers
    503, 429, 429 and then lets requests through.
    """

    def __init__(self, specs):
        self._lock = threading.Lock()
        self._queue = []
        for status, count in specs or []:
            self._queue.extend([status] * count)

    def next(self):
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
            return None


def fail_spec(text):
    try:
        status, count = text.split(":", 1)
        status, count = int(status), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError("expected STATUS:COUNT, e.g. 503:2")
    if not 100 <= status <= 599 or count < 0:
        raise argparse.ArgumentTypeError("STATUS must be 100-599, COUNT >= 0")
    return status, count


def tls_spec(text):
    parts = text.split(",")
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError("expected CERT,KEY")
    return parts[0], parts[1]


def base_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, default=0,
                   help="TCP port on 127.0.0.1 (0 = pick a free one)")
    p.add_argument("--log", metavar="FILE",
                   help="append each request as one JSON line")
    p.add_argument("--tls", type=tls_spec, metavar="CERT,KEY",
                   help="serve HTTPS with this certificate and key")
    return p


class Handler(BaseHTTPRequestHandler):
    """Base request handler: HTTP/1.1 keep-alive, body reading, JSON replies."""

    protocol_version = "HTTP/1.1"
    server_version = "TaskStreamFake/1.0"
    sys_version = ""

    # set by serve()
    jlog = None
    opts = None

    def log_message(self, format, *args):  # noqa: A002 - silence stderr
        pass

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until the empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def lower_headers(self):
        return {k.lower(): v for k, v in self.headers.items()}

    def reply(self, status, body, content_type="application/json",
              extra_headers=None):
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body or b""
        self.send_response(status)
        if data or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return data


def serve(handler_cls, args):
    """Bind, print 'ready PORT', serve until SIGTERM."""
    handler_cls.opts = args
    handler_cls.jlog = JsonLog(args.log)
    httpd = Server(("127.0.0.1", args.port), handler_cls)
    if args.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        # Handshake lazily in the handler thread, so one slow client cannot
        # stall accept() for everybody.
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True,
                                       do_handshake_on_connect=False)

    def stop(signum, frame):
        # shutdown() blocks until serve_forever returns: run it elsewhere.
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready %d" % httpd.server_address[1], flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
    return 0


def now_ms():
    return int(time.time() * 1000)


def main_guard(fn):
    try:
        sys.exit(fn())
    except KeyboardInterrupt:
        sys.exit(0)

# tests/helpers_send.bash: extra loopback servers for the ts-send suites
# (load helpers first, then helpers_send).  Every process is tracked with
# track_pid, so helpers_teardown stops it.
#
#   start_notifyapi [--statuses LIST] [--retry-after S]
#       a remote TaskStream notification API (POST /api/email/send and
#       /api/sms/send): 200 {"status":"sent","id":..}, 400/502/503 with
#       {"error":..}; sets NOTIFYAPI_URL, NOTIFYAPI_LOG (JSON line per request)
#   start_tcpcount PORT
#       a TCP proxy to 127.0.0.1:PORT that appends one line per accepted
#       connection to TCPCOUNT_LOG; sets TCPCOUNT_PORT
#   start_silent
#       accepts connections and never says a word; one line per accepted
#       connection in SILENT_LOG; sets SILENT_PORT
#   start_backlog
#       a listener whose accept queue is full, so connect(2) hangs; sets
#       BACKLOG_PORT

_send_fake_py() {
	local f=$BATS_RUN_TMPDIR/tsend_fake.py
	[[ -s $f ]] && {
		printf '%s\n' "$f"
		return 0
	}
	cat >"$f.tmp" <<-'PY'
		import json, socket, sys, threading, time
		from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

		mode = sys.argv[1]
		args = sys.argv[2:]

		def opt(name, default=None):
		    return args[args.index(name) + 1] if name in args else default

		def ready(port):
		    print("ready %d" % port, flush=True)

		if mode == "notifyapi":
		    statuses = [int(s) for s in opt("--statuses", "200").split(",")]
		    retry = opt("--retry-after")
		    log = open(opt("--log"), "a")
		    lock = threading.Lock()
		    served = [0]

		    class H(BaseHTTPRequestHandler):
		        protocol_version = "HTTP/1.1"
		        def log_message(self, *a):
		            pass
		        def do_POST(self):
		            n = int(self.headers.get("Content-Length") or 0)
		            raw = self.rfile.read(n)
		            with lock:
		                i = served[0]
		                served[0] += 1
		            st = statuses[min(i, len(statuses) - 1)]
		            if self.path not in ("/api/email/send", "/api/sms/send"):
		                st = 404
		            body = ({"status": "sent", "id": "api-%d" % i} if st == 200
		                    else {"error": "refused with %d" % st})
		            data = json.dumps(body).encode()
		            self.send_response(st)
		            self.send_header("Content-Type", "application/json")
		            self.send_header("Content-Length", str(len(data)))
		            if st == 503 and retry:
		                self.send_header("Retry-After", retry)
		            self.end_headers()
		            self.wfile.write(data)
		            try:
		                parsed = json.loads(raw)
		            except ValueError:
		                parsed = raw.decode("utf-8", "replace")
		            with lock:
		                log.write(json.dumps({"path": self.path, "status": st,
		                    "ctype": self.headers.get("Content-Type"),
		                    "body": parsed}) + "\n")
		                log.flush()

		    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
		    srv.daemon_threads = True
		    ready(srv.server_address[1])
		    srv.serve_forever()

		ls = socket.socket()
		ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		ls.bind(("127.0.0.1", 0))
		port = ls.getsockname()[1]

		if mode == "backlog":
		    # listen(0) and never accept: once the queue holds a connection,
		    # further SYNs are dropped and connect(2) waits.
		    ls.listen(0)
		    held = []
		    for _ in range(4):
		        c = socket.socket()
		        c.setblocking(False)
		        try:
		            c.connect(("127.0.0.1", port))
		        except BlockingIOError:
		            pass
		        held.append(c)
		    time.sleep(0.5)
		    ready(port)
		    while True:
		        time.sleep(60)

		ls.listen(64)
		log = open(opt("--log"), "a")
		ready(port)
		keep = []
		if mode == "silent":
		    while True:
		        c, _ = ls.accept()
		        keep.append(c)
		        log.write("accepted\n")
		        log.flush()

		target = int(opt("--target"))

		def pump(a, b):
		    try:
		        while True:
		            d = a.recv(65536)
		            if not d:
		                break
		            b.sendall(d)
		    except OSError:
		        pass
		    for s in (a, b):
		        try:
		            s.shutdown(socket.SHUT_RDWR)
		        except OSError:
		            pass

		while True:  # tcpcount
		    c, _ = ls.accept()
		    log.write("connection\n")
		    log.flush()
		    u = socket.create_connection(("127.0.0.1", target))
		    threading.Thread(target=pump, args=(c, u), daemon=True).start()
		    threading.Thread(target=pump, args=(u, c), daemon=True).start()
	PY
	mv "$f.tmp" "$f"
	printf '%s\n' "$f"
}

# _send_start VAR MODE ARGS...: run the helper, wait for "ready PORT".
_send_start() {
	local var=$1 mode=$2 py out pid port
	shift 2
	py=$(_send_fake_py)
	out=$(mktemp "$BATS_TEST_TMPDIR/$mode.XXXXXX")
	"$HELPERS_PYTHON" "$py" "$mode" "$@" </dev/null >"$out" 2>"$out.err" 3>&- &
	pid=$!
	track_pid "$pid" "$mode"
	WAIT_TIMEOUT=10 wait_for grep -q '^ready ' "$out" || {
		cat "$out.err" >&2
		return 1
	}
	port=$(sed -n 's/^ready //p' "$out")
	printf -v "${var}_PORT" '%s' "$port"
	export "${var}_PORT"
}

start_notifyapi() {
	export NOTIFYAPI_LOG=$BATS_TEST_TMPDIR/notifyapi.jsonl
	: >"$NOTIFYAPI_LOG"
	_send_start NOTIFYAPI notifyapi --log "$NOTIFYAPI_LOG" "$@" || return 1
	export NOTIFYAPI_URL="http://127.0.0.1:$NOTIFYAPI_PORT"
}

start_tcpcount() {
	export TCPCOUNT_LOG=$BATS_TEST_TMPDIR/tcpcount.log
	: >"$TCPCOUNT_LOG"
	_send_start TCPCOUNT tcpcount --log "$TCPCOUNT_LOG" --target "$1"
}

start_silent() {
	export SILENT_LOG=$BATS_TEST_TMPDIR/silent.log
	: >"$SILENT_LOG"
	_send_start SILENT silent --log "$SILENT_LOG"
}

start_backlog() {
	_send_start BACKLOG backlog
}

/* ts-devbroker - an in-memory Kafka cluster for the demo and the tests.
 *
 * It is librdkafka's mock cluster (rdkafka_mock.h) behind a command line:
 * create the topics asked for, print the bootstrap list as the first line
 * of stdout, serve until SIGTERM/SIGINT. With --control it reads
 * fault-injection lines on stdin (`down ID`, `up ID`, `rtt ID MS`,
 * `err API COUNT CODE`, `clear API`) and answers each with `ok ...` on
 * stdout, or an error line on stderr.
 * Never for production: no persistence, bounded retention.
 *
 * Its options are its own (not the shared loader): here --brokers is a
 * count, not a bootstrap list.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "tool.h"
#include "util.h"

#define SYNOPSIS "ts-devbroker [--brokers N] [--partitions N] [--topic NAME[:PARTS]]... [--control]"
#define MAX_BROKERS 32
#define MAX_PARTITIONS 10000
#define CONTROL_LINE_MAX 256

typedef struct devbroker {
	int brokers;            /* mock brokers, ids 1..brokers */
	int partitions;         /* default for --topic NAME without :PARTS */
	int control;            /* read fault-injection lines on stdin */
	char **topics;          /* the --topic arguments, not owned */
	int ntopics;
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
} devbroker;

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " SYNOPSIS "\n\n"
		"An in-memory Kafka cluster (librdkafka's mock cluster) for the demo and tests.\n"
		"Prints the bootstrap list as the first stdout line, then serves until\n"
		"SIGTERM or SIGINT.\n\n"
		"options:\n"
		"  -b, --brokers N        number of brokers, ids 1..N (default 1, at most %d)\n"
		"  -p, --partitions N     partitions of a --topic given without :PARTS (default 4)\n"
		"  -t, --topic NAME[:PARTS]  create topic NAME (repeatable); other topics are\n"
		"                         created on first use with 4 partitions\n"
		"  -C, --control          read `down ID`, `up ID`, `rtt ID MS` lines on stdin\n"
		"                         (ID -1 means every broker), `err API COUNT CODE` (the\n"
		"                         next COUNT API requests fail with Kafka error CODE)\n"
		"                         and `clear API`; answers `ok ...` on stdout\n"
		"  -q, --quiet            only errors on stderr\n"
		"  -v, --verbose          more on stderr\n"
		"  -h, --help             this text\n"
		"  -V, --version          version\n\n"
		"See ts-devbroker(1).\n",
		MAX_BROKERS);
}

/* A whole number in [min, max], or -1 with an error logged. */
static int parse_count(const char *what, const char *s, int min, int max)
{
	ts_detail d;
	int64_t v;

	if (ts_parse_int(s, min, max, &v, &d) != TS_OK) {
		ts_log_error("%s: %s", what, d.msg);
		return -1;
	}
	return (int)v;
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(devbroker *db, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"brokers", required_argument, NULL, 'n'},
		{"control", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{"partitions", required_argument, NULL, 'p'},
		{"quiet", no_argument, NULL, 'q'},
		{"topic", required_argument, NULL, 't'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c, verbosity = 0;

	db->brokers = 1;
	db->partitions = 4;
	db->topics = calloc((size_t)argc + 1, sizeof *db->topics);
	if (!db->topics) {
		ts_log_error("out of memory");
		return ts_err_exit(TS_ERR_NOMEM);
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:b:Chp:qt:vV", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
		case 'b':
			db->brokers = parse_count("--brokers", optarg, 1, MAX_BROKERS);
			if (db->brokers < 0)
				return ts_err_exit(TS_ERR_USAGE);
			break;
		case 'p':
			db->partitions = parse_count("--partitions", optarg, 1, MAX_PARTITIONS);
			if (db->partitions < 0)
				return ts_err_exit(TS_ERR_USAGE);
			break;
		case 't':
			db->topics[db->ntopics++] = optarg;
			break;
		case 'C':
			db->control = 1;
			break;
		case 'q':
			verbosity = -1;
			break;
		case 'v':
			verbosity++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ts-devbroker %s (librdkafka %s)\n", ts_version,
			       rd_kafka_version_str());
			return 0;
		case ':':
			ts_log_error("option %s needs a value", argv[optind - 1]);
			ts_log_error("usage: " SYNOPSIS);
			return ts_err_exit(TS_ERR_USAGE);
		default:
			ts_log_error("unknown option: %s", argv[optind - 1]);
			ts_log_error("usage: " SYNOPSIS);
			return ts_err_exit(TS_ERR_USAGE);
		}
	}
	if (optind < argc) {
		ts_log_error("unexpected argument: %s", argv[optind]);
		ts_log_error("usage: " SYNOPSIS);
		return ts_err_exit(TS_ERR_USAGE);
	}
	ts_log_set_level(verbosity < 0 ? TS_LOG_ERROR
			 : (ts_log_level)(TS_LOG_WARN + verbosity));
	return -1;
}

/* librdkafka's own log lines, through ours (it is chatty about the mock). */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac,
			   const char *buf)
{
	(void)rk;
	if (level <= 3)
		ts_log_error("librdkafka: %s: %s", fac, buf);
	else if (level <= 6)
		ts_log_info("librdkafka: %s: %s", fac, buf);
	else
		ts_log_debug("librdkafka: %s: %s", fac, buf);
}

/* Kafka's brokers set TCP_NODELAY on every connection; librdkafka's mock
 * does not. Without it a small response written while the one before is
 * not yet acknowledged waits for the client's delayed ACK, 40 ms on Linux:
 * one ts-submit run of 300,000 tasks in three took 45 ms longer waiting
 * for its last reports, and kcat the same; ts-httpd with two requests in
 * flight served 1,300 requests/s instead of 50,000. Linux copies the
 * option from a listening socket to the connections it accepts, and the
 * mock offers no way to its listeners but our descriptors: the listening
 * TCP sockets bound to a port of the bootstrap list. Returns how many
 * were set. */
static int nodelay_listeners(devbroker *db)
{
	const char *boot = rd_kafka_mock_cluster_bootstraps(db->mc);
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int set = 0, on = 1;

	if (!dir)
		return 0;
	while ((de = readdir(dir))) {
		struct sockaddr_in sa;
		socklen_t len = sizeof sa, alen = sizeof(int);
		int fd = atoi(de->d_name), listening = 0;
		char port[16];
		const char *p;

		if (fd <= STDERR_FILENO || fd == dirfd(dir) ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &alen) ||
		    !listening ||
		    getsockname(fd, (struct sockaddr *)&sa, &len) ||
		    sa.sin_family != AF_INET)
			continue;
		snprintf(port, sizeof port, ":%u", (unsigned)ntohs(sa.sin_port));
		/* ":PORT" followed by a comma or the end of the list */
		for (p = strstr(boot, port); p; p = strstr(p + 1, port)) {
			char after = p[strlen(port)];

			if (after == ',' || after == '\0')
				break;
		}
		if (p && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
				    sizeof on) == 0)
			set++;
	}
	closedir(dir);
	return set;
}

static int start_cluster(devbroker *db)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
	/* The handle only hosts the cluster; it never connects anywhere. */
	if (rd_kafka_conf_set(conf, "client.id", "ts-devbroker", errstr,
			      sizeof errstr) != RD_KAFKA_CONF_OK) {
		ts_log_error("librdkafka: %s", errstr);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	db->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	if (!db->rk) {
		ts_log_error("librdkafka: %s", errstr);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	db->mc = rd_kafka_mock_cluster_new(db->rk, db->brokers);
	if (!db->mc) {
		ts_log_error("cannot start the mock cluster (no loopback port?)");
		return -1;
	}
	int set = nodelay_listeners(db);

	if (set < db->brokers)
		ts_log_warn("TCP_NODELAY on %d of %d broker listeners: answers may wait up to 40 ms for an ACK",
			    set, db->brokers);
	return 0;
}

/* "NAME" or "NAME:PARTS" -> the topic on the cluster. The replication
 * factor we pass is ignored by the 2.0 mock (every partition lists
 * min(3, brokers) replicas, all in sync); 1 is the value that is valid for
 * any broker count. Leaders never move, even when their broker is set
 * down, so a down broker takes its partitions away, which is what
 * fault-injection tests want. */
static int create_topic(devbroker *db, const char *arg)
{
	char name[250];
	const char *colon = strrchr(arg, ':');
	size_t len = colon ? (size_t)(colon - arg) : strlen(arg);
	int parts = db->partitions;
	rd_kafka_resp_err_t err;

	if (len == 0 || len >= sizeof name) {
		ts_log_error("--topic %s: topic name must be 1-249 characters", arg);
		return ts_err_exit(TS_ERR_USAGE);
	}
	memcpy(name, arg, len);
	name[len] = '\0';
	if (colon) {
		parts = parse_count("--topic", colon + 1, 1, MAX_PARTITIONS);
		if (parts < 0)
			return ts_err_exit(TS_ERR_USAGE);
	}
	err = rd_kafka_mock_topic_create(db->mc, name, parts, 1);
	if (err) {
		ts_log_error("--topic %s: %s", arg, rd_kafka_err2str(err));
		return ts_err_exit(TS_ERR_CONFIG);
	}
	ts_log_info("topic %s: %d partitions", name, parts);
	return -1;
}

/* The requests `err` and `clear` name: the Kafka protocol's ApiKeys of
 * those whose handler in the 2.0.2 mock takes an injected error. */
static const struct {
	const char *name;
	int16_t key;
} apis[] = {
	{"Produce", 0},      {"Fetch", 1},        {"ListOffsets", 2},
	{"OffsetCommit", 8}, {"OffsetFetch", 9},  {"FindCoordinator", 10},
	{"JoinGroup", 11},   {"Heartbeat", 12},   {"LeaveGroup", 13},
	{"SyncGroup", 14},
};

#define CONTROL_WANT "(want `down ID`, `up ID`, `rtt ID MS`, `err API COUNT CODE` or `clear API`)"
#define MAX_ERRORS 1000000

/* The index in apis of NAME (any case), or -1 with an error logged. */
static int api_find(const char *line, const char *name)
{
	char known[256] = "";

	for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++)
		if (!strcasecmp(name, apis[i].name))
			return (int)i;
	for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++)
		snprintf(known + strlen(known), sizeof known - strlen(known),
			 "%s%s", i ? ", " : "", apis[i].name);
	ts_log_error("control: %s: no request %s (known: %s)", line, name, known);
	return -1;
}

/* `err API COUNT CODE`: the next COUNT requests API (from any client, to
 * any broker) are answered with Kafka error CODE; `clear API` drops those
 * not used yet. Answers on stdout (ok) or stderr (error). */
static void control_err(devbroker *db, const char *line)
{
	char cmd[16], api[32], count[16], code[16], extra[2];
	char what[CONTROL_LINE_MAX + 16];
	rd_kafka_resp_err_t *errs;
	int a, n, cnt, ec;

	n = sscanf(line, "%15s %31s %15s %15s %1s", cmd, api, count, code, extra);
	if (!((!strcmp(cmd, "err") && n == 4) || (!strcmp(cmd, "clear") && n == 2))) {
		ts_log_error("control: not understood: %s " CONTROL_WANT, line);
		return;
	}
	if ((a = api_find(line, api)) < 0)
		return;
	if (!strcmp(cmd, "clear")) {
		rd_kafka_mock_clear_request_errors(db->mc, apis[a].key);
		printf("ok clear %s\n", apis[a].name);
		fflush(stdout);
		return;
	}
	snprintf(what, sizeof what, "control: %s: COUNT", line);
	if ((cnt = parse_count(what, count, 1, MAX_ERRORS)) < 0)
		return;
	/* librdkafka 2.0.2 names every code from 1 to END_ALL - 1 */
	snprintf(what, sizeof what, "control: %s: CODE", line);
	if ((ec = parse_count(what, code, 1, RD_KAFKA_RESP_ERR_END_ALL - 1)) < 0)
		return;
	errs = malloc((size_t)cnt * sizeof *errs);
	if (!errs) {
		ts_log_error("control: %s: out of memory", line);
		return;
	}
	for (int i = 0; i < cnt; i++)
		errs[i] = (rd_kafka_resp_err_t)ec;
	rd_kafka_mock_push_request_errors_array(db->mc, apis[a].key,
						(size_t)cnt, errs);
	free(errs);
	printf("ok err %s %d %d\n", apis[a].name, cnt, ec);
	fflush(stdout);
}

/* One control line. Answers on stdout (ok) or stderr (error). */
static void control_line(devbroker *db, char *line)
{
	char cmd[16], extra[2];
	int id, ms = 0, n;
	rd_kafka_resp_err_t err;

	n = sscanf(line, "%15s %d %d %1s", cmd, &id, &ms, extra);
	if (n <= 0)
		return; /* blank line */
	if (!strcmp(cmd, "err") || !strcmp(cmd, "clear")) {
		control_err(db, line);
		return;
	}
	if (n >= 2 && id != -1 && (id < 1 || id > db->brokers)) {
		ts_log_error("control: %s: no broker %d (ids are 1..%d, or -1 for all)",
			     line, id, db->brokers);
		return;
	}
	if (!strcmp(cmd, "down") && n == 2)
		err = rd_kafka_mock_broker_set_down(db->mc, id);
	else if (!strcmp(cmd, "up") && n == 2)
		err = rd_kafka_mock_broker_set_up(db->mc, id);
	else if (!strcmp(cmd, "rtt") && n == 3 && ms >= 0)
		err = rd_kafka_mock_broker_set_rtt(db->mc, id, ms);
	else {
		ts_log_error("control: not understood: %s " CONTROL_WANT, line);
		return;
	}
	if (err) {
		ts_log_error("control: %s: %s", line, rd_kafka_err2str(err));
		return;
	}
	if (!strcmp(cmd, "rtt"))
		printf("ok rtt %d %d\n", id, ms);
	else
		printf("ok %s %d\n", cmd, id);
	fflush(stdout);
}

/* Read what stdin has, run each complete line. Returns 0, or 1 at EOF. */
static int control_read(devbroker *db, char *buf, size_t *len)
{
	ssize_t n = read(STDIN_FILENO, buf + *len, CONTROL_LINE_MAX - *len);
	char *nl;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : 1;
	if (n == 0) {
		if (*len) {  /* a last line without its newline */
			buf[*len] = '\0';
			control_line(db, buf);
			*len = 0;
		}
		return 1;
	}
	*len += (size_t)n;
	while ((nl = memchr(buf, '\n', *len))) {
		size_t used = (size_t)(nl - buf) + 1;

		*nl = '\0';
		if (nl > buf && nl[-1] == '\r')
			nl[-1] = '\0';
		control_line(db, buf);
		memmove(buf, buf + used, *len - used);
		*len -= used;
	}
	if (*len == CONTROL_LINE_MAX) {
		ts_log_error("control: line longer than %d bytes, dropped",
			     CONTROL_LINE_MAX);
		*len = 0;
	}
	return 0;
}

/* Serve until a signal. EOF on the control input only stops reading it. */
static void serve(devbroker *db)
{
	char buf[CONTROL_LINE_MAX + 1];
	size_t len = 0;
	int reading = db->control;

	while (!ts_stop) {
		struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};

		if (poll(&pfd, reading ? 1 : 0, 1000) > 0 && reading)
			if (control_read(db, buf, &len)) {
				ts_log_info("control: end of input; serving until a signal");
				reading = 0;
			}
	}
}

int main(int argc, char **argv)
{
	devbroker db;
	int rc, i;

	memset(&db, 0, sizeof db);
	ts_log_init("ts-devbroker");
	rc = parse_args(&db, argc, argv);
	if (rc >= 0)
		goto out;
	ts_tool_signals();
	if (start_cluster(&db) < 0) {
		rc = ts_err_exit(TS_ERR_INTERNAL);
		goto out;
	}
	for (i = 0; i < db.ntopics; i++)
		if ((rc = create_topic(&db, db.topics[i])) >= 0)
			goto out;
	printf("%s\n", rd_kafka_mock_cluster_bootstraps(db.mc));
	if (fflush(stdout) != 0) {
		ts_log_error("stdout: %s", strerror(errno));
		rc = ts_err_exit(TS_ERR_IO);
		goto out;
	}
	serve(&db);
	rc = 0;
out:
	if (db.mc)
		rd_kafka_mock_cluster_destroy(db.mc);
	if (db.rk)
		rd_kafka_destroy(db.rk);
	free(db.topics);
	return rc;
}

/* send.h - ts-send's delivery loop: batches of payloads to the transports,
 * one JSON result line per message on stdout. */
#ifndef TS_SEND_SEND_H
#define TS_SEND_SEND_H

#include <cjson/cJSON.h>

#include "config.h"
#include "err.h"
#include "transport.h"

/* How many messages go over one SMTP session in --json mode. */
#define SEND_BATCH 256

typedef struct sender {
	const ts_config *cfg;
	ts_transport *email;    /* opened on first use */
	ts_transport *sms;
	ts_err worst;           /* decides the exit status */
	int fatal;              /* a transport could not be opened: stop */
	ts_err fatal_err;
} sender;

/* One message on its way: what goes in, what came out. */
typedef struct item {
	long line;              /* input line (--json), 0 otherwise */
	char task_id[130];      /* from the envelope, or empty */
	ts_channel channel;
	cJSON *payload;         /* owned; NULL when the input was invalid */
	ts_send_result res;
} item;

/* Deliver items[0..n-1] (those with a payload) and print one result line
 * for each, in order. Frees the payloads. */
void sender_flush(sender *s, item *items, size_t n);

/* Record an invalid input as an item that fails with class "invalid". */
void item_invalid(item *it, long line, const char *field, const char *msg);

void sender_close(sender *s);

#endif

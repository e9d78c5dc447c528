/* sched.c - what may run now: per-key (or per-partition) chains, the retry
 * heap, and dropping the not-yet-started work of a partition.
 *
 * Everything here runs on the main thread. A chain holds the tasks of one
 * key of one partition in offset order; only its head is ever ready,
 * running, waiting for a retry or being dead-lettered, so tasks of one key
 * never overlap and keep their order, while other keys go on. A waiting
 * retry sits in the heap, not in a thread: it blocks its own key and
 * nothing else.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static int grow_buckets(struct part *p)
{
	size_t n = p->nbuckets ? p->nbuckets * 2 : 64;
	struct chain **b = calloc(n, sizeof *b);

	if (!b)
		return -1;
	for (size_t i = 0; i < p->nbuckets; i++) {
		struct chain *c = p->buckets[i], *next;
		for (; c; c = next) {
			next = c->hnext;
			c->hnext = b[c->hash & (n - 1)];
			b[c->hash & (n - 1)] = c;
		}
	}
	free(p->buckets);
	p->buckets = b;
	p->nbuckets = n;
	return 0;
}

static struct chain *chain_get(struct part *p, const char *key, size_t len)
{
	uint64_t h = fnv1a(key, len);
	struct chain *c;

	if (p->nbuckets) {
		for (c = p->buckets[h & (p->nbuckets - 1)]; c; c = c->hnext)
			if (c->hash == h && c->key_len == len &&
			    memcmp(c->key, key, len) == 0)
				return c;
	}
	if ((p->nchains + 1 > p->nbuckets * 2 || !p->nbuckets) &&
	    grow_buckets(p) != 0)
		return NULL;
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->key = malloc(len ? len : 1);
	if (!c->key) {
		free(c);
		return NULL;
	}
	memcpy(c->key, key, len);
	c->key_len = len;
	c->hash = h;
	c->hnext = p->buckets[h & (p->nbuckets - 1)];
	p->buckets[h & (p->nbuckets - 1)] = c;
	p->nchains++;
	return c;
}

static void chain_free(struct part *p, struct chain *c)
{
	struct chain **pp = &p->buckets[c->hash & (p->nbuckets - 1)];

	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	p->nchains--;
	free(c->key);
	free(c);
}

void sched_free_part_chains(struct part *p)
{
	for (size_t i = 0; i < p->nbuckets; i++) {
		struct chain *c = p->buckets[i], *next;
		for (; c; c = next) {
			next = c->hnext;
			for (struct wtask *t = c->head; t; t = t->cnext)
				t->chain = NULL;
			free(c->key);
			free(c);
		}
		p->buckets[i] = NULL;
	}
	p->nchains = 0;
}

void sched_add(struct worker *w, struct wtask *t)
{
	struct chain *c;

	if (w->order == 'n' || (w->order == 'k' && !t->key)) {
		task_make_ready(w, t);
		return;
	}
	if (w->order == 'p')
		c = chain_get(t->part, "", 0);
	else
		c = chain_get(t->part, t->key, t->key_len);
	if (!c) {
		/* Out of memory for a chain: run it unordered rather than
		 * lose it. */
		ts_log_error("out of memory ordering task at %d:%lld",
			     t->partition, (long long)t->offset);
		task_make_ready(w, t);
		return;
	}
	t->chain = c;
	t->cnext = NULL;
	if (c->tail)
		c->tail->cnext = t;
	else
		c->head = t;
	c->tail = t;
	if (c->head == t)
		task_make_ready(w, t);
	else
		t->state = W_WAITING;
}

/* Take t out of its chain; when promote and t was the head, the next task
 * of the key becomes ready. */
static void chain_unlink(struct worker *w, struct wtask *t, int promote)
{
	struct chain *c = t->chain;
	struct wtask *prev = NULL, *cur;

	if (!c)
		return;
	for (cur = c->head; cur && cur != t; cur = cur->cnext)
		prev = cur;
	if (cur) {
		if (prev)
			prev->cnext = t->cnext;
		else
			c->head = t->cnext;
		if (c->tail == t)
			c->tail = prev;
	}
	t->chain = NULL;
	t->cnext = NULL;
	if (!c->head) {
		chain_free(t->part, c);
		return;
	}
	if (promote && !prev && c->head->state == W_WAITING)
		task_make_ready(w, c->head);
}

void sched_finish(struct worker *w, struct wtask *t)
{
	chain_unlink(w, t, 1);
}

/* ---- the retry heap ------------------------------------------------------ */

static void heap_swap(struct worker *w, size_t a, size_t b)
{
	struct wtask *x = w->heap[a];

	w->heap[a] = w->heap[b];
	w->heap[b] = x;
	w->heap[a]->heap_i = a;
	w->heap[b]->heap_i = b;
}

static void heap_up(struct worker *w, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (w->heap[parent]->due <= w->heap[i]->due)
			break;
		heap_swap(w, parent, i);
		i = parent;
	}
}

static void heap_down(struct worker *w, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < w->heap_n && w->heap[l]->due < w->heap[m]->due)
			m = l;
		if (r < w->heap_n && w->heap[r]->due < w->heap[m]->due)
			m = r;
		if (m == i)
			return;
		heap_swap(w, i, m);
		i = m;
	}
}

void heap_remove(struct worker *w, struct wtask *t)
{
	size_t i = t->heap_i;

	if (i >= w->heap_n || w->heap[i] != t)
		return;
	w->heap_n--;
	if (i != w->heap_n) {
		w->heap[i] = w->heap[w->heap_n];
		w->heap[i]->heap_i = i;
		heap_down(w, i);
		heap_up(w, i);
	}
	t->heap_i = (size_t)-1;
}

void sched_retry(struct worker *w, struct wtask *t, int64_t due)
{
	if (w->heap_n == w->heap_cap) {
		size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
		struct wtask **h = realloc(w->heap, cap * sizeof *h);
		if (!h) {
			/* cannot wait: retry at once rather than lose it */
			ts_log_error("out of memory scheduling a retry");
			due = 0;
		} else {
			w->heap = h;
			w->heap_cap = cap;
		}
	}
	t->state = W_RETRY;
	t->due = due;
	if (w->heap_n < w->heap_cap) {
		t->heap_i = w->heap_n;
		w->heap[w->heap_n++] = t;
		heap_up(w, t->heap_i);
		return;
	}
	if (t->ec != EC_NONE)
		dlq_send(w, t);
	else {
		t->state = W_READY;
		pool_push(w, t);
	}
}

int64_t sched_fire_retries(struct worker *w, int64_t now)
{
	while (w->heap_n && w->heap[0]->due <= now) {
		struct wtask *t = w->heap[0];
		heap_remove(w, t);
		if (t->ec != EC_NONE) {
			dlq_send(w, t);   /* a dead letter that failed before */
		} else {
			t->state = W_READY;
			pool_push(w, t);
		}
	}
	return w->heap_n ? w->heap[0]->due : -1;
}

/* ---- dropping ------------------------------------------------------------ */

/* Let go of the tasks of p that have not started: with all == 0 only
 * those above the highest offset a thread has taken (the drain of a
 * revoke or a stop: everything below it still finishes, so the commit
 * point passes every task that was done); with all != 0 every task, and
 * the ones running are abandoned (their results will be ignored). A task
 * let go stays unfinished in the commit tracker, so its offset is never
 * committed and the next owner of the partition runs it. */
void sched_drop_part(struct worker *w, struct part *p, int all)
{
	struct wtask *t, *next, *gone = NULL;
	int64_t hi;

	pthread_mutex_lock(&w->mu);
	hi = p->hi_started;
	for (t = p->tasks; t; t = next) {
		next = t->pnext;
		if (!all && t->offset <= hi)
			continue;
		switch (t->state) {
		case W_READY:
			if (!pool_unqueue(w, t)) {
				if (!all)
					continue;   /* a thread took it just now */
				break;
			}
			break;
		case W_RUNNING:
		case W_DLQ:
			if (!all)
				continue;
			break;
		case W_RETRY:
			heap_remove(w, t);
			break;
		case W_WAITING:
			break;
		}
		/* unlink from the partition now; free after the lock */
		part_unlink(p, t);
		t->pnext = gone;
		gone = t;
	}
	pthread_mutex_unlock(&w->mu);
	for (t = gone; t; t = next) {
		next = t->pnext;
		t->pnext = NULL;
		chain_unlink(w, t, 0);
		p->held--;
		if (t->state == W_RUNNING || t->state == W_DLQ) {
			/* a thread or the producer still has it: it comes
			 * back through the done list or a delivery report */
			t->abandoned = 1;
			t->part = NULL;
			continue;
		}
		task_free(w, t);
	}
}

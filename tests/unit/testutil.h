/* testutil.h - assertions the cmocka unit tests share.
 * Include after <cmocka.h>. */
#ifndef TS_TESTUTIL_H
#define TS_TESTUTIL_H

#include <ctype.h>
#include <string.h>
#include <time.h>

/* Fail unless the string hay contains needle (NULL hay fails). */
#define assert_contains(hay, needle)                                          \
	do {                                                                  \
		const char *h_ = (hay), *n_ = (needle);                       \
		if (!h_ || !strstr(h_, n_))                                   \
			fail_msg("\"%s\" does not contain \"%s\"",            \
				 h_ ? h_ : "(null)", n_);                     \
	} while (0)

/* Non-zero when s is a lowercase UUID v4 (version and variant bits set). */
static inline int is_uuid4(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
			return 0;
		}
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* The second by CLOCK_REALTIME, the clock the timestamps under test are
 * read from. Not time(2): it reads a coarser clock, up to a tick behind,
 * so across the turn of a second it gave bounds a second before the
 * timestamp (CI, under ASan: "1796555560 is not within the range
 * 1796555558-1796555559"). */
static inline time_t realtime_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

#endif

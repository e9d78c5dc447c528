/* testutil.h - assertions the cmocka unit tests share.
 * Include after <cmocka.h>. */
#ifndef TS_TESTUTIL_H
#define TS_TESTUTIL_H

#include <string.h>

/* Fail unless the string hay contains needle (NULL hay fails). */
#define assert_contains(hay, needle)                                          \
	do {                                                                  \
		const char *h_ = (hay), *n_ = (needle);                       \
		if (!h_ || !strstr(h_, n_))                                   \
			fail_msg("\"%s\" does not contain \"%s\"",            \
				 h_ ? h_ : "(null)", n_);                     \
	} while (0)

#endif

#include <stdio.h>
#include <string.h>

#include "diag.h"

/* Length of the valid UTF-8 sequence at s that is not a C1 control
 * (U+0080..U+009F), or 0. */
static int utf8_len(const unsigned char *s)
{
	int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	if (s[0] >= 0xf5 || (s[0] == 0xc2 && s[1] < 0xa0))
		return 0;
	for (int i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;   /* overlong, surrogate, beyond U+10FFFF */
	return n;
}

int diag_utf8_len(const char *s)
{
	return (unsigned char)s[0] >= 0x80 ? utf8_len((const unsigned char *)s) : 0;
}

size_t diag_escape(char *dst, size_t n, const char *src)
{
	size_t j = 0;
	if (!n)
		return 0;
	for (const unsigned char *s = (const unsigned char *)src; *s;) {
		char e[8];
		size_t k;
		int u = *s >= 0x80 ? utf8_len(s) : 0;
		if (u) {
			memcpy(e, s, (size_t)u);
			k = (size_t)u;
			s += u;
		} else if (*s == '\n' || *s == '\r' || *s == '\t') {
			k = (size_t)snprintf(e, sizeof e, "\\%c", *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't');
			s++;
		} else if (*s < 0x20 || *s >= 0x7f) {
			k = (size_t)snprintf(e, sizeof e, "\\x%02x", *s);
			s++;
		} else {
			e[0] = (char)*s++;
			k = 1;
		}
		if (j + k >= n)
			break;   /* truncated, never in the middle of an escape */
		memcpy(dst + j, e, k);
		j += k;
	}
	dst[j] = 0;
	return j;
}

int diag_vfail(Diag *d, const char *fmt, va_list ap)
{
	if (d && !d->failed) {
		char raw[sizeof d->msg];
		vsnprintf(raw, sizeof raw, fmt, ap);
		/* one line, and nothing a terminal would act on: names from a
		 * model (ESC sequences, CR, newlines) are escaped here */
		diag_escape(d->msg, sizeof d->msg, raw);
		d->failed = 1;
	}
	return -1;
}

int diag_fail(Diag *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_vfail(d, fmt, ap);
	va_end(ap);
	return -1;
}

void diag_clear(Diag *d)
{
	d->failed = 0;
	d->msg[0] = 0;
}

#include <stdio.h>
#include <string.h>

#include "diag.h"

int diag_vfail(Diag *d, const char *fmt, va_list ap)
{
	if (d && !d->failed) {
		vsnprintf(d->msg, sizeof d->msg, fmt, ap);
		/* one line: fold any newline a message might carry */
		for (char *p = d->msg; *p; p++)
			if (*p == '\n')
				*p = ' ';
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

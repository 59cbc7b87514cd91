/* Diagnostics: recoverable errors are returned as values.
 *
 * A Diag holds the first error of an operation as one line that names the
 * file and the node or tensor ("model.onnx: node '/Add_3' (Add): ...").
 * diag_fail formats into it (only if it is still empty) and returns -1 so
 * callers can write `return diag_fail(d, "...")`. */
#ifndef KILN_DIAG_H
#define KILN_DIAG_H

#include <stdarg.h>

typedef struct Diag {
	int failed;
	char msg[1024];
} Diag;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int diag_fail(Diag *d, const char *fmt, ...);
int diag_vfail(Diag *d, const char *fmt, va_list ap);
void diag_clear(Diag *d);

#endif

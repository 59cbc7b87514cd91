/* Diagnostics: recoverable errors are returned as values.
 *
 * A Diag holds the first error of an operation as one line that names the
 * file and the node or tensor ("model.onnx: node '/Add_3' (Add): ...").
 * diag_fail formats into it (only if it is still empty) and returns -1 so
 * callers can write `return diag_fail(d, "...")`.  The formatted message is
 * passed through diag_escape, so names taken from a model cannot break the
 * line or reach a terminal as control sequences. */
#ifndef KILN_DIAG_H
#define KILN_DIAG_H

#include <stdarg.h>
#include <stddef.h>

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
/* Copies src into dst (n bytes, always terminated) with \n \r \t and every
 * other control byte (C0, DEL, C1 as UTF-8, bytes that are not valid UTF-8)
 * written as \xHH; printable ASCII and valid UTF-8 stay as they are.
 * Truncates between characters; returns the length written. */
size_t diag_escape(char *dst, size_t n, const char *src);
/* The length of the valid UTF-8 character of 2 to 4 bytes at s, else 0
 * (ASCII, a C1 control, an invalid, overlong or surrogate sequence). */
int diag_utf8_len(const char *s);

#endif

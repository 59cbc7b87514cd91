/* test_files.h: a file read whole (golden IR, text-IR cases, the traces,
 * weights and LLVM IR a test wrote), for the unit tests that read files.
 * Plain C: the caller asserts on NULL. */
#ifndef KILN_TESTS_TEST_FILES_H
#define KILN_TESTS_TEST_FILES_H

#include <stdio.h>
#include <stdlib.h>

/* The contents of path with a NUL after them (malloc'd; its size in *n
 * when n is not NULL), or NULL when it cannot be read. */
static inline char *test_read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *s = NULL;
	long len = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
	if (len >= 0 && !fseek(f, 0, SEEK_SET) && (s = malloc((size_t)len + 1)) &&
	    fread(s, 1, (size_t)len, f) != (size_t)len) {
		free(s);
		s = NULL;
	}
	fclose(f);
	if (s) {
		s[len] = 0;
		if (n)
			*n = (size_t)len;
	}
	return s;
}

#endif

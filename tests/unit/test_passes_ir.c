/* Text-IR tests of the passes: every file tests/passes/NAME.ir is one case.
 *
 * A case is an IR graph (ir/print.c format) with directives in comments:
 *   // RUN: pass,pass,...        the pipeline (as --passes=)
 *   // DISABLE: name,...         patterns turned off (as --disable-pattern=)
 *   // CHECK: text               the next line of the output containing text
 *   // CHECK-NOT: text           no line containing text between the
 *                                surrounding CHECK matches
 *   // STATS: name=N             the pass statistics count fusion name N times
 * The graph is parsed, shape-inferred, verified, run through the pipeline
 * (verifying after each pass), verified again and printed; the CHECK lines
 * are matched against the printed IR, FileCheck style. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ir.h"
#include "passes.h"

#define MAXD 64

typedef struct Dir { int kind; char text[512]; } Dir;   /* 0 CHECK, 1 CHECK-NOT, 2 STATS */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	if (s)
		s[n] = 0;
	fclose(f);
	return s;
}

/* Copies the rest of the line after `key` (trimmed) into out. */
static bool directive(const char *line, const char *key, char *out, size_t n)
{
	const char *p = strstr(line, key);
	if (!p)
		return false;
	p += strlen(key);
	while (*p == ' ')
		p++;
	size_t len = strcspn(p, "\n");
	while (len && (p[len - 1] == ' ' || p[len - 1] == '\r'))
		len--;
	snprintf(out, n, "%.*s", (int)len, p);
	return true;
}

/* Line k (0-based) of text into buf; false past the end. */
static bool line_at(const char *text, int k, char *buf, size_t n)
{
	const char *p = text;
	for (int i = 0; i < k; i++) {
		p = strchr(p, '\n');
		if (!p)
			return false;
		p++;
	}
	if (!*p)
		return false;
	size_t len = strcspn(p, "\n");
	snprintf(buf, n, "%.*s", (int)len, p);
	return true;
}

static int run_case(const char *path)
{
	char *src = read_file(path);
	if (!src) {
		print_error("%s: cannot read\n", path);
		return 1;
	}
	char passes[512] = "", disable[256] = "";
	Dir dirs[MAXD];
	int nd = 0;
	for (const char *l = src; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		char line[600];
		snprintf(line, sizeof line, "%.*s", (int)strcspn(l, "\n"), l);
		char tmp[512];
		if (directive(line, "// RUN:", passes, sizeof passes) ||
		    directive(line, "// DISABLE:", disable, sizeof disable))
			continue;
		if (nd < MAXD && directive(line, "// CHECK-NOT:", tmp, sizeof tmp)) {
			dirs[nd].kind = 1;
			snprintf(dirs[nd++].text, sizeof dirs[0].text, "%s", tmp);
		} else if (nd < MAXD && directive(line, "// CHECK:", tmp, sizeof tmp)) {
			dirs[nd].kind = 0;
			snprintf(dirs[nd++].text, sizeof dirs[0].text, "%s", tmp);
		} else if (nd < MAXD && directive(line, "// STATS:", tmp, sizeof tmp)) {
			dirs[nd].kind = 2;
			snprintf(dirs[nd++].text, sizeof dirs[0].text, "%s", tmp);
		}
	}
	Diag d = {0};
	Graph *g = ir_parse(src, path, &d);
	free(src);
	if (!g) {
		print_error("%s: parse: %s\n", path, d.msg);
		return 1;
	}
	PassOptions o = {.opt_level = 2, .passes = passes[0] ? passes : NULL,
	                 .disabled_patterns = disable[0] ? disable : NULL, .verify_each = true};
	PassStats st = {0};
	if (ir_infer_shapes(g, &d) || ir_verify(g, &d) || pass_run_pipeline(g, &o, &st, &d) ||
	    ir_verify(g, &d)) {
		print_error("%s: %s\n", path, d.msg);
		ir_graph_free(g);
		return 1;
	}
	char *out = ir_print_str(g);
	ir_graph_free(g);
	int line = 0, fail = 0;
	for (int i = 0; i < nd && !fail; i++) {
		if (dirs[i].kind == 2) {
			char name[64];
			int want = -1, got = 0;
			if (sscanf(dirs[i].text, "%63[^=]=%d", name, &want) != 2) {
				print_error("%s: bad STATS line '%s'\n", path, dirs[i].text);
				fail = 1;
				break;
			}
			for (int k = 0; k < st.nfusions; k++)
				if (!strcmp(st.fusion_name[k], name))
					got = st.fusion_count[k];
			if (got != want) {
				print_error("%s: fusion %s fired %d times, expected %d\n", path, name, got, want);
				fail = 1;
			}
			continue;
		}
		if (dirs[i].kind == 1)
			continue;
		/* CHECK: find it from `line`; CHECK-NOTs before it apply to the skipped lines */
		int start = line, found = -1;
		char buf[4096];
		for (int k = line; line_at(out, k, buf, sizeof buf); k++)
			if (strstr(buf, dirs[i].text)) {
				found = k;
				break;
			}
		if (found < 0) {
			print_error("%s: CHECK '%s' not found after line %d\n", path, dirs[i].text, line + 1);
			fail = 1;
			break;
		}
		for (int j = i - 1; j >= 0 && dirs[j].kind == 1; j--)
			for (int k = start; k < found; k++)
				if (line_at(out, k, buf, sizeof buf) && strstr(buf, dirs[j].text)) {
					print_error("%s: CHECK-NOT '%s' matched line %d\n", path, dirs[j].text, k + 1);
					fail = 1;
				}
		line = found + 1;
	}
	/* trailing CHECK-NOTs: to the end */
	if (!fail) {
		int last = nd - 1;
		while (last >= 0 && dirs[last].kind == 2)
			last--;
		for (int j = last; j >= 0 && dirs[j].kind == 1; j--) {
			char buf[4096];
			for (int k = line; line_at(out, k, buf, sizeof buf); k++)
				if (strstr(buf, dirs[j].text)) {
					print_error("%s: CHECK-NOT '%s' matched line %d\n", path, dirs[j].text, k + 1);
					fail = 1;
				}
		}
	}
	if (fail)
		print_error("---- output of %s ----\n%s\n", path, out);
	free(out);
	return fail;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_ir_cases(void **state)
{
	(void)state;
	const char *dir = KILN_SOURCE_DIR "/tests/passes";
	DIR *dp = opendir(dir);
	assert_non_null(dp);
	char *names[256];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dp)) && n < 256) {
		size_t len = strlen(e->d_name);
		if (len > 3 && !strcmp(e->d_name + len - 3, ".ir"))
			names[n++] = strdup(e->d_name);
	}
	closedir(dp);
	qsort(names, (size_t)n, sizeof names[0], cmp_str);
	assert_true(n >= 10);
	int failed = 0;
	for (int i = 0; i < n; i++) {
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		int r = run_case(path);
		printf("%s %s\n", r ? "FAIL" : "ok  ", names[i]);
		failed += r;
		free(names[i]);
	}
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ir_cases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

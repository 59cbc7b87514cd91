/* Diagnostics (ir/diag.c): a message is one line with no byte a terminal
 * acts on, whatever the names formatted into it hold (ESC sequences, CR,
 * LF, BEL, DEL, C1 controls, bytes that are not UTF-8), valid UTF-8 kept,
 * truncated between characters; the first error wins. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "diag.h"

static void no_controls(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		assert_false(*p < 0x20 || *p == 0x7f);
		assert_false(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f);
	}
}

static void test_escapes(void **st)
{
	(void)st;
	static const struct { const char *in, *out; } cases[] = {
		{"\x1b[2J\r\nevil", "\\x1b[2J\\r\\nevil"},
		{"a\tb\x07\x7f\x01", "a\\tb\\x07\\x7f\\x01"},
		{"\xc2\x9b" "31m", "\\xc2\\x9b31m"},                  /* C1 CSI as UTF-8 */
		{"\x9b" "31m \xff \x80 \xe2\x82", "\\x9b31m \\xff \\x80 \\xe2\\x82"},   /* not UTF-8 */
		{"\xc0\xaf \xed\xa0\x80", "\\xc0\\xaf \\xed\\xa0\\x80"},   /* overlong, surrogate */
		{"über € 😀 \xc2\xa0", "über € 😀 \xc2\xa0"},       /* valid UTF-8 stays */
		{"back\\slash \"q\" 100%", "back\\slash \"q\" 100%"},
		{"", ""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char buf[256];
		size_t n = diag_escape(buf, sizeof buf, cases[i].in);
		assert_string_equal(buf, cases[i].out);
		assert_int_equal(n, strlen(cases[i].out));
		no_controls(buf);
	}
}

static void test_diag_fail(void **st)
{
	(void)st;
	Diag d = {0};
	assert_int_equal(diag_fail(&d, "m.onnx: node '%s' (%s): bad", "\x1b]0;t\x07\r\n", "Neg"), -1);
	assert_true(d.failed);
	assert_string_equal(d.msg, "m.onnx: node '\\x1b]0;t\\x07\\r\\n' (Neg): bad");
	/* the first error stays */
	diag_fail(&d, "second");
	assert_non_null(strstr(d.msg, "node"));
	diag_clear(&d);
	assert_false(d.failed);

	/* 400 ESC bytes: 1600 escaped; truncated after a whole escape */
	char name[401];
	memset(name, 0x1b, 400);
	name[400] = 0;
	diag_fail(&d, "%s", name);
	assert_int_equal(strlen(d.msg), 1020);
	assert_string_equal(d.msg + 1016, "\\x1b");
	no_controls(d.msg);

	/* truncation never splits a UTF-8 character */
	char buf[5];
	diag_escape(buf, sizeof buf, "ab€c");   /* € is 3 bytes: 2 + 3 leave no room for the end */
	assert_string_equal(buf, "ab");
	diag_escape(buf, sizeof buf, "a\x01");
	assert_string_equal(buf, "a");
	assert_int_equal(diag_escape(buf, 0, "x"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_diag_fail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* be_test.h: helpers of the unit tests that compile graphs with the
 * backend (test_backend.c, test_fpmath.c): a temporary directory for their
 * files (tmp_setup / tmp_teardown as the cmocka group fixtures, tmp_path
 * for a file in it) and test_parse (text IR with shapes inferred).
 * Include after <cmocka.h>. */
#ifndef KILN_TESTS_BE_TEST_H
#define KILN_TESTS_BE_TEST_H

#include <stdio.h>
#include <stdlib.h>

#include "ir.h"

static char tmpdir[256];

static int tmp_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln-test-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int tmp_teardown(void **state)
{
	(void)state;
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* tmpdir/name; the last four results stay valid */
static const char *tmp_path(const char *name)
{
	static char buf[4][512];
	static int k;
	char *p = buf[k++ % 4];
	snprintf(p, 512, "%s/%s", tmpdir, name);
	return p;
}

/* text IR -> graph with shapes inferred; fails the test on an error */
static Graph *test_parse(const char *text)
{
	Diag d = {0};
	Graph *g = ir_parse(text, "test.kir", &d);
	if (!g)
		fail_msg("parse: %s", d.msg);
	if (ir_infer_shapes(g, &d))
		fail_msg("infer: %s", d.msg);
	return g;
}

#endif

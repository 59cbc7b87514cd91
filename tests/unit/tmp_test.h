/* tmp_test.h: a temporary directory for a unit test program's files
 * (test_backend.c, test_fpmath.c): tmp_setup / tmp_teardown as the cmocka
 * group fixtures, tmp_path(name) for a file in it. */
#ifndef KILN_TESTS_TMP_TEST_H
#define KILN_TESTS_TMP_TEST_H

#include <stdio.h>
#include <stdlib.h>

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

#endif

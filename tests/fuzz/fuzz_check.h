/* What fuzz_pipeline.c and fuzz_ir.c check of a graph that loaded (or
 * parsed): a refusal is one line, a pass never leaves a graph the verifier
 * rejects, and a graph that went through prints. */
#ifndef KILN_FUZZ_CHECK_H
#define KILN_FUZZ_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "passes.h"

static inline int fuzz_one_line(const Diag *d)
{
	return d->failed && d->msg[0] && !strchr(d->msg, '\n');
}

/* the pipeline (options po, the verifier after every pass) on g, which
 * inferred and verified; aborts on a finding */
static inline void fuzz_pipeline_check(Graph *g, const PassOptions *po)
{
	Diag d = { 0 };
	if (pass_run_pipeline(g, po, NULL, &d)) {
		if (!fuzz_one_line(&d) || strstr(d.msg, "verifier failed after pass"))
			abort();
		return;
	}
	char *s = ir_print_str(g);
	if (!s)
		abort();
	free(s);
}

#endif

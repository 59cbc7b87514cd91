/* libFuzzer target for kiln's text IR (`kiln compile X.ir`, `kiln dump
 * X.ir`), as tools/ir_input.c takes it: any text (with a NUL: refused
 * before parsing, as the CLI does) either parses or is refused in one line
 * "fuzz.ir:LINE:COL: ..."; a graph that parses and holds no elided constant
 * (the CLI needs --weights-from for those) is verified, its shapes
 * inferred, verified again and run through the -O2 pipeline with the
 * verifier after every pass: each step may refuse in one line, and a pass
 * that leaves a graph the verifier rejects is a compiler bug, as is a
 * crash, a hang or a leak.  Graph 1 of a text that holds several. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

static bool elided(const Graph *g)
{
	for (ValId v = 0; v < g->nvals; v++)
		if (g->vals[v].kind == V_CONST && !g->vals[v].data)
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memchr(data, 0, size))
		return 0;
	char *text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = 0;
	Diag d = { 0 };
	IrParseOpts po = { .graph = 1 };
	Graph *g = ir_parse_ex(text, "fuzz.ir", &po, &d);
	free(text);
	if (!g) {
		if (!fuzz_one_line(&d) || strncmp(d.msg, "fuzz.ir:", 8))
			abort();
		return 0;
	}
	if (elided(g)) {
		ir_graph_free(g);
		return 0;
	}
	PassOptions o = { .opt_level = 2, .verify_each = true };
	if (ir_verify(g, &d) || ir_infer_shapes(g, &d) || ir_verify(g, &d)) {
		if (!fuzz_one_line(&d))
			abort();
	} else {
		fuzz_pipeline_check(g, &o);
	}
	ir_graph_free(g);
	return 0;
}

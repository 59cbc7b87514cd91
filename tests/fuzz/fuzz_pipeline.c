/* libFuzzer target for what runs after the loader: a byte string that
 * loads, infers and verifies (as `kiln compile` takes it) then goes through
 * the -O2 pipeline with the verifier after every pass, and its IR is
 * printed.  A pass may refuse with a one-line message, but a pass that
 * leaves a graph the verifier rejects ("verifier failed after pass") is a
 * compiler bug, as is a crash, a hang or a leak.  The -O2 pipeline is
 * also run with int8 quantization and padding removal, as
 * `kiln compile --quantize=int8 --remove-padding` runs it (each on its own
 * copy of the model). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_import.h"
#include "fuzz_check.h"

/* the pipeline on a fresh load of data (options as kiln compile's) */
static void pipeline(const uint8_t *data, size_t size, const PassOptions *po)
{
	Diag d = { 0 };
	Graph *g = onnx_load_buffer(data, size, "fuzz.onnx", NULL, &d);
	if (!g) {
		if (!fuzz_one_line(&d))
			abort();
		return;
	}
	if (ir_infer_shapes(g, &d) || ir_verify(g, &d)) {
		if (!fuzz_one_line(&d))
			abort();
		ir_graph_free(g);
		return;
	}
	fuzz_pipeline_check(g, po);
	ir_graph_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PassOptions po = { .opt_level = 2, .verify_each = true };
	pipeline(data, size, &po);
	/* the input's length picks one more form (a protobuf's first byte is
	 * nearly always the same tag), so each run costs two */
	if (size & 1)
		po.quantize_int8 = true;
	else
		po.remove_padding = true;
	pipeline(data, size, &po);
	return 0;
}

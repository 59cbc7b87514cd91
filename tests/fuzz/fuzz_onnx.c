/* libFuzzer target for the ONNX loader: any byte string must either load
 * (and then survive shape inference) or be refused with a one-line message
 * naming the input, never crash, hang or leak.  External data is refused
 * (dir NULL), so the fuzzer never touches the file system. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Diag d = { 0 };
	Graph *g = onnx_load_buffer(data, size, "fuzz.onnx", NULL, &d);
	if (!g) {
		/* a refusal is one line naming the input */
		if (!d.failed || strncmp(d.msg, "fuzz.onnx: ", 11) || strchr(d.msg, '\n'))
			abort();
		return 0;
	}
	Diag sd = { 0 };
	if (ir_infer_shapes(g, &sd) && (!sd.failed || strchr(sd.msg, '\n')))
		abort();
	ir_graph_free(g);
	return 0;
}

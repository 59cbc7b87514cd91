/* kiln-runner: runs a compiled model on tensor files, for kiln check on
 * another architecture (built for it, run under emulation, e.g.
 * qemu-aarch64).  Links the loader library only.
 *
 *   kiln-runner MODEL.so THREADS DIR...
 *
 * For each DIR: reads DIR/input_K.bin (raw_tensor.h) for every input of the
 * model, runs it, writes DIR/output_K.bin (with the output's name).  A
 * uint16 input where the model takes bfloat16 is read as bfloat16 (onnx
 * writes bfloat16 test data as uint16).  Errors: one line on stderr, exit 1
 * (2 for bad usage); the sets before the failing one are written. */
#include <stdio.h>
#include <stdlib.h>

#include "kiln.h"
#include "raw_tensor.h"

#define MAX_IO 64

static int run_dir(kiln_context *c, const kiln_model *m, const char *dir)
{
	int nin = kiln_model_num_inputs(m), nout = kiln_model_num_outputs(m), rc = 1;
	kiln_tensor in[MAX_IO], out[MAX_IO];
	char path[4200];
	memset(in, 0, sizeof in);
	memset(out, 0, sizeof out);
	int k = 0;
	for (; k < nin; k++) {
		const char *why;
		snprintf(path, sizeof path, "%s/input_%d.bin", dir, k);
		if (raw_read(path, &in[k], NULL, &why)) {
			fprintf(stderr, "kiln-runner: %s: %s\n", path, why);
			goto done;
		}
		if (in[k].dtype == KILN_U16 && kiln_model_input(m, k)->dtype == KILN_BF16)
			in[k].dtype = KILN_BF16;
	}
	if (kiln_run(c, in, nin, out, nout)) {
		fprintf(stderr, "kiln-runner: %s: %s\n", dir, kiln_last_error(c));
		goto done;
	}
	for (int o = 0; o < nout; o++) {
		snprintf(path, sizeof path, "%s/output_%d.bin", dir, o);
		if (raw_write(path, &out[o], kiln_model_output(m, o)->name)) {
			fprintf(stderr, "kiln-runner: %s: cannot write\n", path);
			goto done;
		}
	}
	rc = 0;
done:
	for (int j = 0; j < k; j++)
		free(in[j].data);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: kiln-runner MODEL.so THREADS DIR...\n");
		return 2;
	}
	char *end;
	long threads = strtol(argv[2], &end, 10);
	if (*end || threads < 1 || threads > 256) {
		fprintf(stderr, "kiln-runner: THREADS must be 1 to 256, got '%s'\n", argv[2]);
		return 2;
	}
	kiln_model *m = kiln_model_load(argv[1]);
	if (!m) {
		fprintf(stderr, "kiln-runner: %s\n", kiln_load_error());
		return 1;
	}
	if (kiln_model_num_inputs(m) > MAX_IO || kiln_model_num_outputs(m) > MAX_IO) {
		fprintf(stderr, "kiln-runner: %s: more than %d inputs or outputs\n", argv[1], MAX_IO);
		kiln_model_free(m);
		return 1;
	}
	kiln_context *c = kiln_context_create(m, (int)threads);
	if (!c) {
		fprintf(stderr, "kiln-runner: %s\n", kiln_load_error());
		kiln_model_free(m);
		return 1;
	}
	int rc = 0;
	for (int i = 3; i < argc && !rc; i++)
		rc = run_dir(c, m, argv[i]);
	kiln_context_free(c);
	kiln_model_free(m);
	return rc;
}

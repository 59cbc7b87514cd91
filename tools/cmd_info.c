/* kiln info OUT.so [--json]: what a compiled model is (kiln_model_get_info)
 * and its inputs and outputs. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kiln.h"

static const char help[] =
	"usage: kiln info OUT.so [--json]\n"
	"Prints what a compiled model is: the kiln version and ABI that made it, its\n"
	"target (triple, CPU, the CPU features kiln_model_load checks), --fpmath, its\n"
	"weights (embedded or the file beside it, bytes, content hash) and its inputs\n"
	"and outputs with dtypes and symbolic dims.  --json: one JSON object.\n";

static void io_json(const kiln_io_info *io)
{
	printf("{\"name\": ");
	cli_json_str(io->name);
	printf(", \"dtype\": \"%s\", \"dims\": [", ir_dtype_name((DType)io->dtype));
	for (int k = 0; k < io->rank; k++) {
		printf(k ? ", " : "");
		cli_json_str(io->dims[k]);
	}
	printf("]}");
}

static void io_text(const char *what, const kiln_io_info *io)
{
	printf("%s ", what);
	cli_put_esc(io->name);
	printf(" %s[", ir_dtype_name((DType)io->dtype));
	for (int k = 0; k < io->rank; k++) {
		fputs(k ? ", " : "", stdout);
		cli_put_esc(io->dims ? io->dims[k] : NULL);
	}
	puts("]");
}

int cmd_info(int argc, char **argv)
{
	if (cli_has_help(argc, argv))
		return fputs(help, stdout), EXIT_OK;
	const char *so = NULL;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (cli_positional("info", argv[i], &so)) {
			return EXIT_USAGE;
		}
	}
	if (!so) {
		cli_error("info: no model given (see kiln info --help)");
		return EXIT_USAGE;
	}
	kiln_model *m = kiln_model_load(so);
	kiln_model_info mi;
	if (!m || kiln_model_get_info(m, &mi)) {
		cli_error("%s", kiln_load_error());
		return EXIT_BAD_INPUT;
	}
	int nin = kiln_model_num_inputs(m), nout = kiln_model_num_outputs(m);
	if (json) {
		printf("{\"name\": ");
		cli_json_str(mi.name);
		printf(", \"kiln_version\": ");
		cli_json_str(mi.kiln_version);
		printf(", \"abi_version\": %d, \"target_triple\": ", mi.abi_version);
		cli_json_str(mi.target_triple);
		printf(", \"target_cpu\": ");
		cli_json_str(mi.target_cpu);
		printf(", \"cpu_features\": ");
		cli_json_str(mi.cpu_features);
		printf(", \"fpmath\": ");
		cli_json_str(mi.fpmath);
		printf(", \"weights_file\": ");
		if (mi.weights_file)
			cli_json_str(mi.weights_file);
		else
			printf("null");
		printf(", \"weights_bytes\": %llu, \"weights_hash\": \"%016llx\", \"inputs\": [",
		       mi.weights_bytes, mi.weights_hash);
		for (int i = 0; i < nin; i++) {
			printf(i ? ", " : "");
			io_json(kiln_model_input(m, i));
		}
		printf("], \"outputs\": [");
		for (int i = 0; i < nout; i++) {
			printf(i ? ", " : "");
			io_json(kiln_model_output(m, i));
		}
		printf("]}\n");
	} else {
		/* every string comes from the .so (names from the model): escaped */
		fputs("model ", stdout);
		cli_put_esc(mi.name);
		fputs("\nkiln ", stdout);
		cli_put_esc(mi.kiln_version);
		printf(" (ABI %d)\ntarget ", mi.abi_version);
		cli_put_esc(mi.target_triple);
		fputs(", cpu ", stdout);
		cli_put_esc(mi.target_cpu);
		fputs("\ncpu features ", stdout);
		cli_put_esc(mi.cpu_features && mi.cpu_features[0] ? mi.cpu_features : "(none recorded)");
		fputs("\nfpmath ", stdout);
		cli_put_esc(mi.fpmath);
		fputs("\nweights ", stdout);
		cli_put_esc(mi.weights_file ? mi.weights_file : "embedded");
		printf(", %llu bytes, hash %016llx\n", mi.weights_bytes, mi.weights_hash);
		for (int i = 0; i < nin; i++)
			io_text("input", kiln_model_input(m, i));
		for (int i = 0; i < nout; i++)
			io_text("output", kiln_model_output(m, i));
	}
	kiln_model_free(m);
	return EXIT_OK;
}

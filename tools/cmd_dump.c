/* kiln dump: print the IR of a model after the pass pipeline. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char help[] =
	"usage: kiln dump MODEL.onnx [options]\n"
	"\n"
	"Prints kiln's IR of MODEL.onnx after the pass pipeline (default -O2).\n"
	"  -O0 | -O1 | -O2          pipeline: nothing / canonicalize+fold / everything\n"
	"  --passes=a,b,c           run exactly these passes\n"
	"  --print-before=PASS      print the IR before PASS\n"
	"  --print-after=PASS       print the IR after PASS\n"
	"  --print-after-all        print the IR after every pass\n"
	"  --disable-pattern=NAME   turn one fusion pattern off (comma-separated list)\n"
	"  --verify-each            run the verifier after every pass\n"
	"  --format=text|dot        text IR (default) or a Graphviz graph\n";

int cmd_dump(int argc, char **argv)
{
	CompileOpts o;
	const char *model = NULL;
	cli_compile_opts_init(&o);
	if (cli_has_help(argc, argv)) {
		fputs(help, stdout);
		return EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		int r = cli_parse_compile_opt(&o, argv[i]);
		if (r < 0)
			return EXIT_USAGE;
		if (r)
			continue;
		if (argv[i][0] == '-' || model) {
			cli_error("dump: unexpected argument '%s' (see kiln dump --help)", argv[i]);
			return EXIT_USAGE;
		}
		model = argv[i];
	}
	if (!model) {
		cli_error("dump: no model given (see kiln dump --help)");
		return EXIT_USAGE;
	}
	PassStats ps = {0};
	Graph *g = cli_load_and_optimize(model, &o, &ps, NULL);
	if (!g)
		return EXIT_BAD_INPUT;
	if (!strcmp(o.format, "dot"))
		ir_print_dot(stdout, g);
	else
		ir_print(stdout, g);
	ir_graph_free(g);
	return EXIT_OK;
}

/* kiln dump: print the IR of a model after the pass pipeline. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char help[] =
	"usage: kiln dump MODEL.onnx [options]\n"
	"       kiln dump X.ir --weights-from=MODEL.onnx [options]\n"
	"\n"
	"Prints kiln's IR of MODEL.onnx after the pass pipeline (default -O2); with\n"
	"--print-before/--print-after/--print-after-all (text), only those.  Each\n"
	"printed graph compiles back: kiln compile X.ir --weights-from=MODEL.onnx.\n"
	"  -O0 | -O1 | -O2          pipeline: nothing / canonicalize+fold / everything\n"
	"  --passes=a,b,c           run exactly these passes\n"
	"  --print-before=PASS      print the IR before PASS\n"
	"  --print-after=PASS       print the IR after PASS\n"
	"  --print-after-all        print the IR after every pass\n"
	"  --disable-pattern=NAME   turn one fusion pattern off (comma-separated list)\n"
	"  --explain=PATTERN        for every candidate root of PATTERN, say whether it fused\n"
	"                           or the first condition that failed, naming the node\n"
	"  --verify-each            run the verifier after every pass\n"
	"  --format=text|dot        text IR (default) or a Graphviz graph\n"
	"  --weights-from=M.onnx, --graph=N   for text IR input, as for kiln compile\n"
	"  --graph=all              (X.ir) every graph of the dump in turn, in one process:\n"
	"                           each one's output (its prints, or its IR after the\n"
	"                           pipeline) under a line \"// ===== X.ir graph K =====\";\n"
	"                           one that fails says why on stderr and the next one\n"
	"                           follows; exit 1 if any failed\n"
	"  --list-passes            list the passes, pipelines and fusion patterns\n";

/* One graph (o->graph of a text IR, or the model): its prints, or its IR
 * after the pipeline.  EXIT_OK or EXIT_BAD_INPUT (message printed). */
static int dump_one(const char *model, CompileOpts *o)
{
	PassStats ps = {0};
	Graph *g = cli_load_and_optimize(model, o, &ps, NULL);
	if (!g)
		return EXIT_BAD_INPUT;
	bool printed = o->passes.print_before || o->passes.print_after || o->passes.print_after_all;
	if (!strcmp(o->format, "dot"))
		ir_print_dot(stdout, g);
	else if (!printed)   /* the prints are the output: one graph per print, each compiles back */
		ir_print(stdout, g);
	ir_graph_free(g);
	return EXIT_OK;
}

/* --graph=all: every graph of a multi-graph dump in turn, in one process
 * (a test reads back each graph --print-after-all printed), each under its
 * block line; a graph that fails does not stop the next. */
static int dump_all(const char *model, CompileOpts *o)
{
	int nbad = 0;
	o->ngraphs = 0;
	for (int k = 1; k == 1 || k <= o->ngraphs; k++) {
		o->graph = k;
		cli_block_start("%s graph %d", model, k);
		nbad += dump_one(model, o) != EXIT_OK;
		if (o->ngraphs == 0)   /* the text was never read (message printed) */
			return EXIT_BAD_INPUT;
	}
	return nbad ? EXIT_BAD_INPUT : EXIT_OK;
}

int cmd_dump(int argc, char **argv)
{
	CompileOpts o;
	const char *model;
	if (argc == 2 && !strcmp(argv[1], "--list-passes")) {   /* the pass errors point here */
		pass_list(stdout);
		return EXIT_OK;
	}
	int r = cli_parse_model_cmd(argc, argv, "dump", help, false, &o, &model);
	if (r)
		return r < 0 ? EXIT_USAGE : EXIT_OK;
	if (!model) {
		cli_error("dump: no model given (see kiln dump --help)");
		return EXIT_USAGE;
	}
	return o.graph == CLI_GRAPH_ALL ? dump_all(model, &o) : dump_one(model, &o);
}

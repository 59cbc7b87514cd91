/* Shared pieces of the kiln command-line tool (the files in tools/). */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "ir.h"
#include "passes.h"
#include "backend.h"

/* Exit codes: 0 success, 1 bad input or failed check, 2 bad usage. */
enum { EXIT_OK = 0, EXIT_BAD_INPUT = 1, EXIT_USAGE = 2 };
/* --graph=all */
enum { CLI_GRAPH_ALL = -1 };

/* Options every compiling command accepts. */
typedef struct CompileOpts {
	PassOptions passes;
	BeOptions be;
	bool stats;
	int64_t max_tensor_bytes;  /* --max-tensor-bytes, 0: default (ir/checked.h) */
	const char *format;    /* dump: "text" or "dot" */
	const char *weights_from;  /* text IR input: the ONNX model its elided constants come from */
	int graph;             /* text IR input: which graph of a multi-graph dump (1-based), 0: the
	                        * only, CLI_GRAPH_ALL: each in turn (kiln dump --graph=all) */
	int ngraphs;           /* out, text IR input: the graphs the text holds (0: unread) */
	bool fpmath_given;     /* --fpmath was on the command line */
} CompileOpts;

void cli_compile_opts_init(CompileOpts *o);
/* Consumes argv[*i] if it is a pass or backend option; 1 if consumed,
 * 0 if not ours, -1 on a malformed value (message printed). */
int cli_parse_compile_opt(CompileOpts *o, const char *arg);
/* After the options: --quantize=int8 without --fpmath gives the attentions
 * bf16 products (pass fpmath-bf16; the GEMMs stay int8) where the target
 * has AVX512_BF16; --fpmath=fp32 keeps them fp32. */
void cli_compile_opts_finish(CompileOpts *o);
/* Parses `kiln CMD MODEL [options]` (dump, compile): compile options, -o OUT
 * when want_out, one model.  1 when --help was printed, -1 on a bad argument
 * (message printed), else 0; *model is NULL when none was given. */
int cli_parse_model_cmd(int argc, char **argv, const char *cmd, const char *help, bool want_out,
                        CompileOpts *o, const char **model);
/* Load an ONNX model, infer shapes, run the pass pipeline.  NULL with the
 * message printed on failure.  ops_in (optional, OP_COUNT counts) gets the
 * op histogram before the passes. */
Graph *cli_load_and_optimize(const char *path, CompileOpts *o, PassStats *ps, int *ops_in);

/* Text IR input (ir_input.c): X.ir or X.kir, or a file whose first word
 * (after comments) is `graph`. */
bool cli_is_text_ir(const char *path);
/* Parses it (graph o->graph; o->ngraphs gets how many the text holds, also
 * on failure once the text was read), takes the elided constants from
 * o->weights_from, verifies and infers shapes; NULL with a one-line message
 * "FILE:LINE:COL: ..." printed. */
Graph *cli_load_text_ir(const char *path, CompileOpts *o);

/* A block of output that belongs to NAME (a folder of kiln check, a graph of
 * kiln dump --graph=all) starts with the line "// ===== NAME =====", so a
 * script can split the output of one process per model or graph. */
void cli_block_start(const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 1, 2)))
#endif
	;
/* --stats (cmd_compile.c): the symbol values the arena is measured at
 * (calloc'd, NULL out of memory), and the statistics, last the JSON line */
int64_t *cli_stats_syms(const Graph *g);
void cli_print_stats(const Graph *g, const int *ops_in, const PassStats *ps, double ms,
                     long long arena, const BeStats *bs, BeFpmath fpmath);

/* --target-cpu checked for the triple: 0 ok, 1 help printed, -1 error said */
int cli_check_target_cpu(const CompileOpts *o);
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 1, 2)))
#endif
	;
/* Prints msg prefixed by path unless it names it already. */
void cli_fail(const char *path, const char *msg);
/* Strict numbers for option NAME: the whole of s, within [lo, hi]; else a
 * message naming the option and the range, and -1 (bad usage). */
int cli_parse_int(const char *name, const char *s, long long lo, long long hi, long long *v);
/* A finite number >= 0 (tolerances). */
int cli_parse_nonneg(const char *name, const char *s, double *v);
/* arg of `kiln cmd`, no option cmd knows: its one positional argument
 * (*pos, still NULL), 0; else (an unknown option, a second positional one)
 * a message and -1 (bad usage) */
int cli_positional(const char *cmd, const char *arg, const char **pos);
double cli_now_ms(void);
/* bytes of one element of a kiln_dtype (1 for bool, u8, i8 and unknown ones) */
size_t cli_dtype_size(int dtype);
bool cli_has_help(int argc, char **argv);
/* s (NULL: "") as a JSON string on stdout, quotes, backslashes and control bytes escaped */
void cli_json_str(const char *s);
/* s (NULL: "?") on stdout as diag_escape writes it: a name from a model
 * reaches the terminal as text, never as a control sequence */
void cli_put_esc(const char *s);

/* profile.c: kiln run/bench --profile.  The fp32 FMA peak of `threads`
 * threads in GFLOP/s, measured (0 when unknown; *isa names the code). */
double cli_fma_peak_gflops(int threads, const char **isa);
struct kiln_context;
/* Stops c's profile, writes its trace to path and prints the table; 0, or
 * -1 with the message printed. */
int cli_profile_report(struct kiln_context *c, const char *so, const char *path, int threads);
/* Before the runs: path can be written (created if absent, a regular
 * file); -1 with the message printed. */
int cli_profile_check_path(const char *path);

int cmd_dump(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_ops(int argc, char **argv);
int cmd_info(int argc, char **argv);

#endif

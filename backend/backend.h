/* The LLVM backend: IR -> native shared object (see runtime/rt.h for the ABI).
 *
 * Requires: a verified graph whose every value has a dtype and a rank and
 * symbolic dims (ir_infer_shapes done), ops the backend knows.
 * Produces: OUT (.so, .o, .ll or .s), and with .so also OUT.h (typed entry
 * point) and, with external weights, OUT.weights. */
#ifndef KILN_BACKEND_H
#define KILN_BACKEND_H

#include <stdint.h>
#include "ir.h"

typedef enum BeEmit { BE_EMIT_SO, BE_EMIT_OBJ, BE_EMIT_LLVM, BE_EMIT_ASM } BeEmit;

/* Precision of the GEMMs (KlnGemm).  F32: everything fp32.  BF16: the
 * (constant, panel-packed) W of every KlnGemm is stored in bf16 (rt.h's
 * bf16 panel layout) and the runtime rounds the activations it multiplies
 * to bf16, summing in fp32; every other op stays fp32. */
typedef enum BeFpmath { BE_FPMATH_F32 = 0, BE_FPMATH_BF16 } BeFpmath;

typedef struct BeOptions {
	const char *out;           /* output path */
	BeEmit emit;
	const char *target_cpu;    /* NULL: host */
	const char *target_triple; /* NULL: host */
	bool weights_external;     /* write OUT.weights instead of embedding */
	int opt_level;             /* LLVM optimization level 0..3 (default 3) */
	BeFpmath fpmath;           /* GEMM precision (default 0: f32) */
	const char *runtime_lib;   /* libkiln_rt.a to link (NULL: $KILN_RUNTIME_LIB, the
	                            * installed one beside this kiln, the build tree's) */
	const char *dim_names;     /* OUT.h's names of symbols, "s41=batch,s25=sequence"
	                            * (NULL: dynamo's sNN named from the inputs) */
	const char *name;          /* OUT.h's entry point NAME_run and include guard
	                            * (NULL: OUT's base name as a C identifier) */
	/* Per ir symbol: the values to measure the planned arena at
	 * (BeStats.arena_bytes, for kiln compile --stats); NULL: not measured. */
	const int64_t *arena_syms;
	/* Most data operands (inputs + outputs) one node may have, 0: the
	 * default BE_MAX_NODE_OPERANDS.  A node's code and call grow with
	 * its operands, and LLVM's time with their square (a 1,000-input
	 * Concat took minutes): a node over the limit is refused. */
	int max_node_operands;
} BeOptions;

#define BE_MAX_NODE_OPERANDS 256

typedef struct BeStats {
	int64_t weights_bytes;
	int32_t nbufs;            /* planned arena buffers */
	int64_t arena_bytes;      /* the arena at opt->arena_syms, as the runtime packs
	                           * it; -1 when not measured or a size is out of range */
	double codegen_ms, link_ms;
} BeStats;

int be_compile(Graph *g, const BeOptions *opt, BeStats *stats, Diag *diag);

/* Checks a --target-cpu name for the triple (NULL: this machine's) before
 * anything is compiled: 0 usable (or cpu NULL), -1 with diag if LLVM does
 * not know it or cannot generate code with it; for "help", writes the CPU
 * list to help_out and returns 1. */
int be_check_target_cpu(const char *triple, const char *cpu, FILE *help_out, Diag *diag);

/* Whether the target of o (this machine by default; an x86-64 level) has
 * feature name of runtime/cpu_features.def, as the model records it and
 * kiln_model_load checks it: false when the target's features are unknown
 * (another named CPU or triple). */
bool be_target_has_feature(const BeOptions *o, const char *name);

/* Cross targets (backend/link.c).  be_cross_gnu: the GNU triple
 * ("aarch64-linux-gnu") when --target-triple names another architecture
 * that kiln links .so files for with Debian's cross toolchain, else NULL
 * (no triple, this machine's architecture, or one without support).
 * be_cross_path: FILE of the runtime built for GNU ("libkiln_rt.a",
 * "kiln-runner") into buf: $KILN_CROSS_DIR/GNU/FILE if that is set, else
 * LIBDIR/kiln/GNU/FILE beside this kiln, else the build tree's GNU/FILE;
 * 0, or -1 and diag. */
const char *be_cross_gnu(const char *target_triple);
int be_cross_path(const char *gnu, const char *file, char *buf, size_t n, Diag *diag);

#endif

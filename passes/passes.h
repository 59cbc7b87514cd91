/* Pass manager: named passes, pipelines per -O level, dumps between passes.
 *
 * Each pass is `void pass(Graph *g, PassCtx *pc)` (see pipeline.c) with its
 * contract in a comment on top of its file. */
#ifndef KILN_PASSES_H
#define KILN_PASSES_H

#include <stdio.h>
#include "ir.h"

typedef struct PassOptions {
	int opt_level;                 /* 0, 1, 2 (default 2) */
	const char *passes;            /* "a,b,c": custom pipeline, overrides opt_level */
	const char *print_before;      /* pass name or NULL */
	const char *print_after;       /* pass name or NULL */
	bool print_after_all;
	bool verify_each;
	const char *disabled_patterns; /* "name,name" */
	const char *explain;           /* pattern name: say per candidate root why it (did not) fuse
	                                * (the fused ones as they fire, the rest after the pipeline) */
	FILE *dump;                    /* where the prints go (stdout when NULL) */
	bool quantize_int8;            /* run `quantize` after the pipeline (--quantize=int8) */
	int quantize_wbits;            /* its weights: 7 (|w| <= 64) or 8 (0: 8) (--quantize-weight-bits) */
	bool remove_padding;           /* run `pack-tokens` last (--remove-padding) */
	bool fpmath_bf16;              /* run `fpmath-bf16` last (--fpmath=bf16; --quantize=int8
	                                * without --fpmath where the target has AVX512_BF16) */
} PassOptions;

/* Fusion counters, by fusion name ("attention", "qkv", ...: the names of
 * passes/patterns.def, in the order they first fired). */
#define PASS_MAX_FUSIONS 32
typedef struct PassStats {
	int nfusions;
	const char *fusion_name[PASS_MAX_FUSIONS];
	int fusion_count[PASS_MAX_FUSIONS];
} PassStats;

/* Runs the pipeline.  -1 and diag when a pass fails or verification fails. */
int pass_run_pipeline(Graph *g, const PassOptions *opt, PassStats *stats, Diag *diag);
/* Prints the known pass names, one per line with its contract, the
 * pipelines and the fusion patterns (passes/patterns.def). */
void pass_list(FILE *f);

/* The fusion patterns of passes/patterns.def: how many, the i-th name, and
 * the index of the name s[0..len) (-1 if unknown). */
int pass_pattern_count(void);
const char *pass_pattern_name(int i);
int pass_pattern_lookup(const char *s, size_t len);
/* Checks a comma-separated list of pattern names (an empty element is
 * allowed); -1 and diag ("OPTION: unknown pattern 'x' (...)") on the first
 * unknown one. */
int pass_check_patterns(const char *option, const char *list, Diag *diag);

#endif

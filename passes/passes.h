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
	const char *explain;           /* pattern name: say per candidate root why it (did not) fuse */
	FILE *dump;                    /* where the prints go (stdout when NULL) */
	bool quantize_int8;            /* run `quantize` after the pipeline (--quantize=int8) */
} PassOptions;

/* Fusion counters, by fusion name ("attention", "qkv", ...). */
#define PASS_MAX_FUSIONS 16
typedef struct PassStats {
	int nfusions;
	const char *fusion_name[PASS_MAX_FUSIONS];
	int fusion_count[PASS_MAX_FUSIONS];
} PassStats;

/* Runs the pipeline.  -1 and diag when a pass fails or verification fails. */
int pass_run_pipeline(Graph *g, const PassOptions *opt, PassStats *stats, Diag *diag);
/* Prints the known pass names, one per line with its contract. */
void pass_list(FILE *f);

#endif

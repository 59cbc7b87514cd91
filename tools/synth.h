/* Synthesized inputs for kiln bench (and compile --stats): BERT-style
 * token ids, masks, token types and region features, by input name. */
#ifndef KILN_SYNTH_H
#define KILN_SYNTH_H

#include "kiln.h"

#define SYNTH_MAX 32

typedef struct SynthInputs {
	int n;
	kiln_tensor t[SYNTH_MAX];
} SynthInputs;

/* 0, or -1 with a message printed (an input kiln cannot synthesize).
 * Token ids are (100 + 7919*i mod 20000) mod vocab, as ort_bench.mjs's
 * when vocab > 20100. */
int synth_inputs(const kiln_model *m, int64_t batch, int64_t seq, int64_t regions, int64_t vocab,
                 SynthInputs *s);
void synth_free(SynthInputs *s);
/* Masks (rank-2 inputs named *mask*) with real lengths spread evenly from
 * lo (row 0) to hi (the last row), right-padded: kiln bench --lengths. */
void synth_lengths(const kiln_model *m, SynthInputs *s, int64_t lo, int64_t hi);
/* The value synth_inputs gives a symbolic dim k of an input (by its name
 * and dtype) the first time it binds that symbol. */
int64_t synth_dim(const char *input, int dtype, int k, int64_t batch, int64_t seq, int64_t regions);

#endif

/* Value analyses shared by the attention patterns (attn_mask.c): what a
 * tensor is as a function of the query position q and the key position k
 * of scores [..., Sq, Sk].  They only read the graph (attn_cond_peel adds
 * nodes to a match). */
#ifndef KILN_ATTN_MASK_H
#define KILN_ATTN_MASK_H

#include <stdbool.h>
#include <stdint.h>

#include "pass_internal.h"

/* A mask of two values split by the diagonal band k - q <= t:
 * v[..., q, k] = k - q <= t ? lo : hi (the same for every leading index),
 * t = t + ts where ts is a symbolic length (a KV cache's past) or -1. */
typedef struct QkStep {
	int64_t t;
	DimId ts;
	double lo, hi;       /* f32 values for float masks; 1/0 for bools */
} QkStep;

/* v (bool, int or f32) broadcasts to scores [..., sq, sk] and is a QkStep,
 * proved from its construction: Range iotas placed on the q or k axis by
 * Unsqueeze/Reshape/Expand, shifted by constants, compared (Less,
 * LessOrEqual, Greater, GreaterOrEqual, Not, And with true, Or with false),
 * then Where/Cast/Mul/Add/Sub
 * with constant scalars; or Trilu of a constant-filled [.., sq, sk]
 * tensor; or the Slice rows sk - sq .. sk, columns 0 .. sk of a constant
 * band [1.., N, N] (GPT-2's causal buffer, every entry checked); or a bool
 * constant [1.., sq, sk] of static lengths that is such a band, every entry
 * checked (an opset < 14 or static export's folded causal mask).  On
 * failure *why says which step (when why is not NULL). */
bool attn_qk_step(const Graph *g, ValId v, DimId sq, DimId sk, QkStep *st, const char **why);

/* The band of st is the kernel's causal edge: t == sk - sq (so k <= q
 * without a past, k <= q + past with one). */
bool attn_qk_causal_edge(const Graph *g, const QkStep *st, DimId sq, DimId sk);

/* v holds one number *f everywhere: a constant, ConstantOfShape, or an
 * Expand of such. */
bool attn_filled(const Graph *g, ValId v, double *f);

/* Masks that are not causal (a Where's condition c over scores of dims
 * sd[4], true where the Where keeps the score or where it fills F).
 *
 * Adding F equals replacing by F for every finite score and bias: F is -inf
 * or F <= -2^110 (score + F rounds to F), so a row with every key masked
 * comes out the same (all F, or NaN for -inf). */
bool attn_fill_absorbs(double f);
/* c behind Expands and bool Casts of bools (for a Where whose result has
 * the scores' shape, the same condition).  With m, an Expand to a Shape
 * (expand_as), both used once, goes into m: it may read the scores. */
ValId attn_cond_peel(const Graph *g, ValId c, Match *m);
/* c is [B, 1, 1, Sk] (B, Sk the scores'): a mask of batch and key only;
 * *src the [B, Sk] value it reshapes, else c. */
bool attn_pad_shaped(const Graph *g, ValId c, const DimId *sd, ValId *src);
/* e is And(C, P): C the causal predicate k <= q + Sk - Sq (true below the
 * edge), P attn_pad_shaped (*pad its source), e.g. transformers'
 * masking_utils and_masks(causal, padding). */
bool attn_causal_and_pad(const Graph *g, ValId e, const DimId *sd, ValId *pad);

#endif

/* Value analyses shared by the attention patterns (attn_mask.c): what a
 * tensor is as a function of the query position q and the key position k
 * of scores [..., Sq, Sk].  They only read the graph. */
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
 * LessOrEqual, Greater, GreaterOrEqual, Not), then Where/Cast/Mul/Add/Sub
 * with constant scalars; or Trilu of a constant-filled [.., sq, sk]
 * tensor; or the Slice rows sk - sq .. sk, columns 0 .. sk of a constant
 * band [1.., N, N] (GPT-2's causal buffer, every entry checked).  On
 * failure *why says which step (when why is not NULL). */
bool attn_qk_step(const Graph *g, ValId v, DimId sq, DimId sk, QkStep *st, const char **why);

/* The band of st is the kernel's causal edge: t == sk - sq (so k <= q
 * without a past, k <= q + past with one). */
bool attn_qk_causal_edge(const Graph *g, const QkStep *st, DimId sq, DimId sk);

/* v holds one number *f everywhere: a constant, ConstantOfShape, or an
 * Expand of such. */
bool attn_filled(const Graph *g, ValId v, double *f);

#endif

/* Private to ir/shape*.c: the context of one node's shape inference and the
 * helpers the op families share (input access, constant/symbolic content,
 * broadcasting, errors naming the node). */
#ifndef KILN_SHAPE_INTERNAL_H
#define KILN_SHAPE_INTERNAL_H

#include "ir.h"

/* Most elements of symbolic content (sval) we track per tensor. */
#define SH_MAX_SVAL 64

typedef struct Sh {
	Graph *g;
	NodeId id;
	Diag *diag;
} Sh;

#define SH_NODE(s) IR_NODE((s)->g, (s)->id)

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int ir_shp_fail(Sh *s, const char *fmt, ...);   /* "FILE: node 'N' (Op): ..." */

const Value *ir_shp_in(Sh *s, int i);           /* NULL if absent */
const char *ir_shp_inname(Sh *s, int i);
/* Input i with a known dtype and shape, or -1 and diag. */
int ir_shp_need(Sh *s, int i, const Value **v);
/* Sets output i (skipped when that optional output is absent). */
void ir_shp_out(Sh *s, int i, DType t, int rank, const DimId *dims);
void ir_shp_sval(Sh *s, int i, int n, const DimId *e);
/* Symbolic content of input i into out[max]: count, or -1 when unknown. */
int ir_shp_getsval(Sh *s, int i, DimId *out, int max);
/* Like getsval but every element must be a constant: count, or -1 + diag
 * saying that input `what` must be constant. */
int ir_shp_ints(Sh *s, int i, int64_t *out, int max, const char *what);
/* Data-dependent shapes (the content of a shape-deciding input is only
 * known at run time): ir_shp_dyn is the symbol of output i's axis k that
 * the node binds at run time (ir_dim_dyn); ir_shp_dyn_out gives output i
 * such a symbol on every axis.  ir_shp_len is the static length of input
 * i (a scalar counts 1), which decides the output's rank; -1 + diag when
 * it is symbolic or over max. */
DimId ir_shp_dyn(Sh *s, int i, int k);
void ir_shp_dyn_out(Sh *s, int i, DType t, int rank);
int ir_shp_len(Sh *s, int i, const char *what, int max);
/* Normalizes axis a in [-rank, rank): 0 or -1 + diag. */
int ir_shp_axis(Sh *s, int64_t a, int rank, int *out);
/* numpy broadcasting of two shapes (see shape.c for the symbolic rule). */
int ir_shp_bcast(Sh *s, int ra, const DimId *a, int rb, const DimId *b, int *rout, DimId *out);
/* Unifies two dims that must be equal (const mismatch: -1 + diag). */
int ir_shp_unify(Sh *s, DimId a, DimId b, DimId *out, const char *what);
DimId ir_shp_numel(Sh *s, const Value *v);
bool ir_shp_const_shape(Sh *s, const Value *v, int64_t *numel);
char *ir_shp_dimstr(Sh *s, DimId d, char *buf, size_t n);

/* op families */
int ir_shp_elementwise(Sh *s);   /* unary, binary, variadic, Where, Clip, Dropout */
int ir_shp_layout(Sh *s);        /* Shape .. Trilu (K_SHAPE) */
int ir_shp_math(Sh *s);          /* reductions, norms, MatMul, Gemm, Einsum */
int ir_shp_einsum(Sh *s);
int ir_shp_quant(Sh *s);         /* DynamicQuantizeLinear MatMulInteger (De)QuantizeLinear */

#endif

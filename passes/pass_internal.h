/* Private to passes/: the pass context, graph-matching helpers, the
 * rewriter and the fusion-pattern table type.
 *
 * Matching helpers only read the graph.  The rewriter (rw_*) creates
 * nodes through ir_node_new / ir_set_input / ir_replace_all_uses /
 * ir_node_erase, so use lists stay right; passes call ir_toposort (and
 * ir_dce) when they are done. */
#ifndef KILN_PASS_INTERNAL_H
#define KILN_PASS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "ir.h"
#include "passes.h"

typedef struct PassCtx {
	const PassOptions *opt;
	PassStats *stats;
	Diag *diag;
	int failed;          /* set by pass_fail */
	int round;           /* round of the fusion fixpoint (0 the first) */
	bool dry;            /* fuse_run only matches and explains (--explain, after the pipeline) */
	/* --explain: the nodes of the explained pattern's root op that its own
	 * rewrites made (e.g. the KlnRMSNorm skip_rmsnorm made): said "fused as"
	 * when they were made, so the dry run prints nothing more for them.
	 * Grown by fuse_run, freed by pass_run_pipeline. */
	NodeId *made;
	int nmade, capmade;
	int nexplained;      /* --explain lines printed (none at all: said so) */
} PassCtx;

typedef void (*PassFn)(Graph *g, PassCtx *pc);

/* Records an error (first one wins); the pipeline stops after the pass. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void pass_fail(PassCtx *pc, const char *fmt, ...);
/* Counts one firing of fusion `name` in pc->stats. */
void pass_count(PassCtx *pc, const char *name);
/* True if --disable-pattern names `name`. */
bool pass_pattern_disabled(const PassCtx *pc, const char *name);

/* ---- the passes (one file each; contracts on top of the files) ---------- */
void pass_shapes(Graph *g, PassCtx *pc);        /* shapes.c */
void pass_assume_dims(Graph *g, PassCtx *pc);   /* shapes.c */
void pass_mask_names(Graph *g, PassCtx *pc);    /* fuse_attention.c */
void pass_cleanup(Graph *g, PassCtx *pc);       /* cleanup.c */
void pass_fold(Graph *g, PassCtx *pc);          /* fold.c */
void pass_canon_reshape(Graph *g, PassCtx *pc); /* canon_reshape.c */
void pass_dce(Graph *g, PassCtx *pc);           /* dce.c */
void pass_cse(Graph *g, PassCtx *pc);           /* cse.c */
void pass_fuse_norm(Graph *g, PassCtx *pc);     /* fuse_norm.c */
void pass_fuse_gelu(Graph *g, PassCtx *pc);     /* fuse_gelu.c */
void pass_fuse_gemm(Graph *g, PassCtx *pc);     /* fuse_gemm.c */
void pass_fuse_attention(Graph *g, PassCtx *pc);/* fuse_attention.c */
void pass_fuse_qkv(Graph *g, PassCtx *pc);      /* fuse_qkv.c */
void pass_fuse_embed(Graph *g, PassCtx *pc);    /* fuse_embed.c */
void pass_canon_einsum(Graph *g, PassCtx *pc);  /* canon_einsum.c */
void pass_quantize(Graph *g, PassCtx *pc);      /* quantize.c */
void pass_fuse_qgemm(Graph *g, PassCtx *pc);    /* fuse_qgemm.c */
void pass_pack_tokens(Graph *g, PassCtx *pc);   /* pack_tokens.c */
void pass_fpmath_bf16(Graph *g, PassCtx *pc);   /* fpmath.c */

/* ---- matching helpers (match.c): never mutate ---------------------------- */

/* The live node producing v if its op is `op` (OP_COUNT: any op), else -1. */
NodeId m_def(const Graph *g, ValId v, Op op);
/* v is a constant with data whose elements all equal one number: *x. */
bool m_const_scalar(const Graph *g, ValId v, double *x);
/* v is a constant with data (not elided). */
bool m_is_const(const Graph *g, ValId v);
/* Uses of v counted, graph outputs counted as a use. */
int m_nuses(const Graph *g, ValId v);
/* Dims known and equal (DimIds are hash-consed). */
bool m_same_shape(const Graph *g, ValId a, ValId b);
bool m_dim_is(const Graph *g, DimId d, int64_t c);
/* For a binary node n: the input that is not `x` (-1 if neither is x). */
ValId m_other(const Graph *g, NodeId n, ValId x);
/* Reads the axes of a ReduceMean (attribute or constant input), normalized
 * against rank; returns the count or -1 if not static. */
int m_reduce_axes(const Graph *g, NodeId n, int rank, int64_t *axes, int max);
/* perm attribute equals p[0..k). */
bool m_perm_is(const Graph *g, NodeId n, const int64_t *p, int k);

/* A match: the nodes it covers and, when it failed, why.  Every pattern
 * has its own typed result: a struct whose first member is a Match, e.g.
 *   typedef struct LnMatch { Match m; ValId x, gamma, beta; double eps; } LnMatch;
 * Its Pattern row gives the size (PATTERN_ROW); fuse_run zeroes that much
 * and hands the matcher and the rewriter &lm->m, which they turn back with
 * M_AS(LnMatch, m) (a struct and its first member share their address). */
#define M_MAXNODES 48
typedef struct Match {
	NodeId root;
	NodeId nodes[M_MAXNODES];
	int nnodes;
	/* Why the match failed (first reason wins; see m_fail). */
	NodeId why_node;
	char why[200];
	/* Set by a matcher that fails because the root is not a candidate at
	 * all: --explain prints nothing for it.  (A root the pattern's own
	 * rewrite made, in an earlier round of the fixpoint, is left out by
	 * fuse_run itself: PassCtx.made.) */
	bool done;
} Match;
#define M_AS(T, mp) ((T *)(mp))
#define M_AS_CONST(T, mp) ((const T *)(mp))
/* The largest typed match fuse_run can hold. */
#define M_MATCH_BYTES 4096

/* Records why a candidate did not match: the node where the failing
 * condition was checked and the condition, e.g.
 *   return m_fail(g, m, n, "K path: Reshape is not a head split: dim 2 is %lld", d);
 * The first reason wins.  Returns false so a matcher can return it.  Keep one
 * message per failure point, in the match code; --explain=PATTERN prints it. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
bool m_fail(const Graph *g, Match *m, NodeId at, const char *fmt, ...);

/* ---- helpers every pattern uses (match.c) ---------------------------------- */

/* v with no-op wrappers skipped: Identity, Cast to the same dtype, and
 * Reshape/Flatten/Squeeze/Unsqueeze to the same dims; the skipped nodes are
 * added to m (when not NULL), so m_closed checks them. */
ValId m_unwrap(const Graph *g, ValId v, Match *m);
/* m_def of m_unwrap(v): the node of op `op` behind the wrappers, else -1
 * (then nothing is added to m). */
NodeId m_def_u(const Graph *g, ValId v, Op op, Match *m);
/* Commutative operands: binary node n has an input made by `op` (behind
 * wrappers, which go into m): *def that node, *other the other input. */
bool m_split(const Graph *g, NodeId n, Op op, Match *m, NodeId *def, ValId *other);
/* Binary node n is (x OP c) with c a constant scalar (or (c OP x) when it
 * commutes): *x, *c. */
bool m_split_const(const Graph *g, NodeId n, bool commutes, ValId *x, double *c);
/* |x - want| <= rtol * |want| */
bool m_near(double x, double want, double rtol);
/* What v computes as a polynomial in x of degree <= M_POLY_DEG over Add,
 * Sub, Mul, Div by a constant, Neg and Pow 2/3, with constant scalars, in
 * any grouping and order: c[0..M_POLY_DEG] its coefficients.  Every node on
 * the way is added to m and must have a single use (else m_fail says which).
 * x * (1 + 0.044715 * x * x) and x + 0.044715 * Pow(x, 3) give the same c. */
#define M_POLY_DEG 3
bool m_poly(const Graph *g, ValId v, ValId x, Match *m, double *c);

void m_add(Match *m, NodeId n);   /* ignores duplicates and -1 */
bool m_has(const Match *m, NodeId n);
/* Every output of every matched node other than `keep` is used only by
 * matched nodes and is not a graph output (so the match can be replaced). */
bool m_closed(const Graph *g, const Match *m, ValId keep);

/* ---- rewriter (rewrite.c) -------------------------------------------------- */

/* A new node whose single output takes over `old`: same dtype and shape,
 * same name (the old value is renamed), all uses moved to it. */
NodeId rw_replace(Graph *g, Op op, const char *name, int nin, const ValId *in, ValId old);
/* Erases every matched node (after rw_replace took over the result). */
void rw_erase_match(Graph *g, const Match *m);
/* The nodes created from first_new on (by a rewrite of m) record the ONNX
 * node names m absorbed (Node.from; fuse_run calls it after each rewrite). */
void rw_record_from(Graph *g, const Match *m, NodeId first_new);
/* Node n absorbed just src[0..nsrc) (a rewrite creating several nodes says
 * so for the ones that do not stand for the whole match). */
void rw_from_nodes(Graph *g, NodeId n, const NodeId *src, int nsrc);
/* A new constant (copied data) named `base`, or base.1, base.2, ... when
 * the graph has that name already (deterministic: no global counter). */
ValId rw_const(Graph *g, const char *base, DType t, int rank, const int64_t *dims,
               const void *data, size_t nbytes);

/* ---- the fusion-pattern table (fuse.c) ------------------------------------- */

typedef struct Pattern {
	const char *name;        /* also the stats key and --disable-pattern name */
	Op root;
	size_t size;             /* sizeof the pattern's typed match */
	bool (*match)(const Graph *g, NodeId root, Match *m);
	void (*rewrite)(Graph *g, const Match *m, PassCtx *pc);
} Pattern;
/* A Pattern table row whose typed match is T (a struct beginning with a Match). */
#define PATTERN_ROW(name, root, T, match, rewrite) { name, root, sizeof(T), match, rewrite }

/* Sweeps the graph once per pattern (table order), matching at every live
 * node whose op is the pattern's root; rewrites and counts each match
 * (the new nodes record the absorbed node names), then DCE and toposort.
 * With --explain=NAME each candidate root of NAME prints a line (fused, or
 * the reason m_fail recorded); in dry mode (pc->dry) only NAME is matched
 * and nothing is rewritten.  Every pattern name must be in patterns.def.
 * Returns the number of rewrites. */
int fuse_run(Graph *g, PassCtx *pc, const Pattern *pats, int npats);

#endif

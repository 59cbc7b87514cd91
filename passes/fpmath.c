/* Pass `fpmath-bf16` (kiln compile --fpmath=bf16): every fused attention
 * computes its two products on bf16 operands.
 *
 *   KlnAttention(...) {..}  ->  KlnAttention(...) {.., fpmath = 1}
 *
 * The runtime (kernels_fused.c, att_block_bf16) then rounds Q, K, V and
 * the probabilities to bf16 for Q K^T and P V and sums in f32 (vdpbf16ps
 * where the CPU has AVX512_BF16); scale, masks and softmax stay f32.  The
 * GEMMs' bf16 weights are the backend's part of --fpmath=bf16
 * (backend/emit_attrs.c).  --quantize=int8 without --fpmath runs it too
 * where the target has AVX512_BF16 (tools/kiln.c, cli_compile_opts_finish:
 * the attentions' bf16 products, the GEMMs int8; --fpmath=fp32 opts out);
 * otherwise (fp32, the default) it does not run and every attention keeps
 * fpmath 0.
 *
 * requires: the fusions before it (at -O0 there is no KlnAttention: it
 *           changes nothing).
 * preserves: everything but the attribute (shapes, nodes, names).
 * breaks: nothing. */
#include "pass_internal.h"

void pass_fpmath_bf16(Graph *g, PassCtx *pc)
{
	(void)pc;
	for (int32_t i = 0; i < g->norder; i++) {
		NodeId id = g->order[i];
		const Node *n = IR_NODE(g, id);
		if (!n->dead && n->op == OP_KlnAttention)
			ir_attr_set_int(g, id, "fpmath", 1);
	}
}

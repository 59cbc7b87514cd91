/* kernels_norm.c: the fused ops of the norm and activation forms that
 * fuse-norm / fuse-gelu recognize besides the BERT ones (kernels_fused.c):
 *
 *   KlnRMSNorm(x[..., H], gamma[H]) -> like x      fa = [epsilon]
 *       y = x / sqrt(mean(x^2 over the last axis) + epsilon) * gamma
 *       (T5, LLaMA; gamma may be one element, broadcast)
 *   KlnGelu with approximate 2 (QuickGELU, CLIP): y = x * sigmoid(1.702 x),
 *       called from KlnGelu's kernel (rt_quick_gelu).
 *
 * Rows are split over the pool with rt_par; sums in double. */
#include <math.h>
#include <string.h>

#include "rt_internal.h"

/* ---- KlnRMSNorm ---- */

typedef struct rms_job {
	const float *x, *gamma;
	float *y;
	int64_t n;
	bool g1;
	float eps;
} rms_job;

static void rms_range(void *arg, int64_t b, int64_t e)
{
	const rms_job *j = arg;
	int64_t n = j->n;
	for (int64_t r = b; r < e; r++) {
		const float *x = j->x + r * n;
		float *y = j->y + r * n;
		double acc = 0;
		for (int64_t k = 0; k < n; k++)
			acc += (double)x[k] * x[k];
		float inv = (float)(1.0 / sqrt(acc / (double)n + j->eps));
		for (int64_t k = 0; k < n; k++)
			y[k] = x[k] * inv * j->gamma[j->g1 ? 0 : k];
	}
}

RT_KERNEL(KlnRMSNorm)
{
	(void)ia; (void)nia;
	const char *op = "KlnRMSNorm";
	if (nin < 2 || nout < 1 || nfa < RT_NFA_KlnRMSNorm)
		return rt_error(f, "node '%s' (%s): bad arity", loc, op);
	const rt_t *x = &in[0], *g = &in[1];
	if (!x->data || !g->data)
		return rt_error(f, "node '%s' (%s): an input is missing", loc, op);
	if (x->dtype != KILN_F32 || g->dtype != KILN_F32 || out[0].dtype != KILN_F32)
		return rt_error(f, "node '%s' (%s): x, gamma and the output must be f32", loc, op);
	if (x->rank < 1)
		return rt_error(f, "node '%s' (%s): input must have rank >= 1", loc, op);
	rms_job j = {x->data, g->data, out[0].data, x->dims[x->rank - 1], false,
	             fa[RT_FA_KlnRMSNorm_epsilon]};
	int64_t total = rt_numel(x), ng = rt_numel(g);
	if (rt_numel(&out[0]) != total)
		return rt_error(f, "node '%s' (%s): output has the wrong size", loc, op);
	if (ng != j.n && ng != 1)
		return rt_error(f, "node '%s' (%s): gamma has %lld elements, expected %lld", loc, op,
		                (long long)ng, (long long)j.n);
	j.g1 = ng == 1;
	if (j.n == 0 || total == 0)
		return 0;
	rt_par(f, total / j.n, j.n * 4, rms_range, &j);
	return 0;
}

/* ---- QuickGELU ---- */

typedef struct qg_job { const float *x; float *y; } qg_job;

static void quick_gelu_range(void *arg, int64_t b, int64_t e)
{
	const qg_job *j = arg;
	for (int64_t i = b; i < e; i++) {
		float v = j->x[i];
		j->y[i] = v / (1.0f + expf(-1.702f * v));
	}
}

void rt_quick_gelu(kiln_frame *f, const float *x, float *y, int64_t n)
{
	qg_job j = {x, y};
	rt_par(f, n, 20, quick_gelu_range, &j);
}

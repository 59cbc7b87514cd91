/* kernels_quant.c: ONNX's quantization ops (shapes: ir/shape_quant.c),
 * reference kernels that follow the ONNX definitions:
 *
 *   DynamicQuantizeLinear(x) -> y u8, y_scale, y_zero_point
 *       lo = min(0, min x), hi = max(0, max x), y_scale = (hi - lo) / 255,
 *       y_zero_point = clamp(round(-lo / y_scale), 0, 255),
 *       y = clamp(round(x / y_scale) + y_zero_point, 0, 255)
 *       (all x zero: y_scale 0, y and y_zero_point 0; a NaN or infinite x
 *       cannot be quantized: an error naming the node)
 *   MatMulInteger(A, B, a_zp?, b_zp?) -> i32 sum_k (A - a_zp)(B - b_zp)
 *       (a_zp per row of A or scalar, b_zp per column of B or scalar)
 *   QuantizeLinear(x, scale, zp?) ia = [axis]
 *       y = clamp(round(x / scale) + zp) to u8 or i8 (NaN -> zp)
 *   DequantizeLinear(x, scale, zp?) ia = [axis]   y = (x - zp) * scale
 * round: to nearest, ties to even.  Scales and zero points are scalars or
 * one per index of `axis`. */
#include <math.h>
#include <stdlib.h>

#include "rt_internal.h"

/* value i of a u8 / i8 / i32 tensor as an int */
static inline int32_t qget(const rt_t *t, int64_t i)
{
	switch (t->dtype) {
	case KILN_U8: return ((const uint8_t *)t->data)[i];
	case KILN_I8: return ((const int8_t *)t->data)[i];
	default: return ((const int32_t *)t->data)[i];
	}
}

/* per = 1 (scalar scale) or dims[axis]; inner = elements after axis */
static int per_axis(kiln_frame *f, const char *loc, const char *op, const rt_t *x,
                    const rt_t *sc, const rt_t *zp, int64_t axis, int64_t *per, int64_t *inner)
{
	if (!sc->data || sc->dtype != KILN_F32)
		return rt_error(f, "node '%s' (%s): the scale must be f32", loc, op);
	int64_t ns = rt_numel(sc);
	if (zp && zp->data && rt_numel(zp) != ns)
		return rt_error(f, "node '%s' (%s): zero point and scale differ in size", loc, op);
	*per = 1;
	*inner = rt_numel(x);
	if (ns == 1)
		return 0;
	if (axis < 0 || axis >= x->rank || x->dims[axis] != ns)
		return rt_error(f, "node '%s' (%s): %lld scales for axis %lld", loc, op, (long long)ns,
		                (long long)axis);
	*per = ns;
	*inner = 1;
	for (int d = (int)axis + 1; d < x->rank; d++)
		*inner *= x->dims[d];
	return 0;
}

static inline int32_t sat(float v, int32_t lo, int32_t hi)
{
	if (!(v >= (float)lo))
		return lo;
	return v > (float)hi ? hi : (int32_t)v;
}

RT_KERNEL(QuantizeLinear)
{
	(void)fa, (void)nfa;
	const char *op = "QuantizeLinear";
	if (nin < 2 || nout < 1 || nia < 1)
		return rt_error(f, "node '%s' (%s): bad arity", loc, op);
	const rt_t *x = &in[0], *zp = nin > 2 && in[2].data ? &in[2] : NULL;
	rt_t *y = &out[0];
	if (x->dtype != KILN_F32)
		return rt_bad_dtype(f, loc, op, x->dtype);
	if (y->dtype != KILN_U8 && y->dtype != KILN_I8)
		return rt_bad_dtype(f, loc, op, y->dtype);
	int64_t per, inner;
	if (per_axis(f, loc, op, x, &in[1], zp, ia[0], &per, &inner))
		return 1;
	int32_t lo = y->dtype == KILN_U8 ? 0 : -128, hi = y->dtype == KILN_U8 ? 255 : 127;
	const float *xs = x->data, *sc = in[1].data;
	int64_t n = rt_numel(x);
	for (int64_t i = 0; i < n; i++) {
		int64_t c = per == 1 ? 0 : (i / inner) % per;
		int32_t z = zp ? qget(zp, c) : 0;
		float v = xs[i] / sc[c];
		int32_t q = v != v ? z : sat(nearbyintf(v) + (float)z, lo, hi);
		if (y->dtype == KILN_U8)
			((uint8_t *)y->data)[i] = (uint8_t)q;
		else
			((int8_t *)y->data)[i] = (int8_t)q;
	}
	return 0;
}

RT_KERNEL(DequantizeLinear)
{
	(void)fa, (void)nfa;
	const char *op = "DequantizeLinear";
	if (nin < 2 || nout < 1 || nia < 1)
		return rt_error(f, "node '%s' (%s): bad arity", loc, op);
	const rt_t *x = &in[0], *zp = nin > 2 && in[2].data ? &in[2] : NULL;
	if (x->dtype != KILN_U8 && x->dtype != KILN_I8 && x->dtype != KILN_I32)
		return rt_bad_dtype(f, loc, op, x->dtype);
	if (out[0].dtype != KILN_F32)
		return rt_bad_dtype(f, loc, op, out[0].dtype);
	int64_t per, inner;
	if (per_axis(f, loc, op, x, &in[1], zp, ia[0], &per, &inner))
		return 1;
	const float *sc = in[1].data;
	float *y = out[0].data;
	int64_t n = rt_numel(x);
	for (int64_t i = 0; i < n; i++) {
		int64_t c = per == 1 ? 0 : (i / inner) % per;
		int32_t z = zp ? qget(zp, c) : 0;
		y[i] = (float)(qget(x, i) - z) * sc[c];
	}
	return 0;
}

RT_KERNEL(DynamicQuantizeLinear)
{
	(void)ia, (void)nia, (void)fa, (void)nfa;
	const char *op = "DynamicQuantizeLinear";
	if (nin < 1 || nout < 3)
		return rt_error(f, "node '%s' (%s): bad arity", loc, op);
	const rt_t *x = &in[0];
	if (x->dtype != KILN_F32)
		return rt_bad_dtype(f, loc, op, x->dtype);
	const float *xs = x->data;
	int64_t n = rt_numel(x);
	float lo = 0, hi = 0;
	for (int64_t i = 0; i < n; i++) {
		if (!isfinite(xs[i]))
			return rt_error(f, "node '%s' (%s): input element %lld is %g: cannot be quantized",
			                loc, op, (long long)i, (double)xs[i]);
		lo = xs[i] < lo ? xs[i] : lo;
		hi = xs[i] > hi ? xs[i] : hi;
	}
	float s = (hi - lo) / 255.0f;
	int32_t zp = s > 0 ? sat(nearbyintf(-lo / s), 0, 255) : 0;
	uint8_t *y = out[0].data;
	for (int64_t i = 0; i < n; i++)
		y[i] = (uint8_t)(s > 0 ? sat(nearbyintf(xs[i] / s) + (float)zp, 0, 255) : 0);
	*(float *)out[1].data = s;
	*(uint8_t *)out[2].data = (uint8_t)zp;
	return 0;
}

typedef struct mmi_job {
	const rt_t *A, *B, *azp;
	const int32_t *bz;     /* [N] b's zero point per column */
	int32_t *Y;
	int64_t M, K, N;       /* M: rows of A over every batch */
	int64_t rows_per_zp;   /* A's rows per batch matrix (a_zp per row) */
} mmi_job;

static void mmi_rows(void *arg, int64_t b, int64_t e)
{
	const mmi_job *j = arg;
	int64_t K = j->K, N = j->N;
	const int32_t *bz = j->bz;
	for (int64_t m = b; m < e; m++) {
		int32_t az = 0;
		if (j->azp)
			az = qget(j->azp, rt_numel(j->azp) == 1 ? 0 : m % j->rows_per_zp);
		int32_t *y = j->Y + m * N;
		for (int64_t n = 0; n < N; n++)
			y[n] = 0;
		for (int64_t k = 0; k < K; k++) {
			int32_t a = qget(j->A, m * K + k) - az;
			if (!a)
				continue;
			for (int64_t n = 0; n < N; n++)
				y[n] += a * (qget(j->B, k * N + n) - bz[n]);
		}
	}
}

RT_KERNEL(MatMulInteger)
{
	(void)ia, (void)nia, (void)fa, (void)nfa;
	const char *op = "MatMulInteger";
	if (nin < 2 || nout < 1)
		return rt_error(f, "node '%s' (%s): bad arity", loc, op);
	const rt_t *A = &in[0], *B = &in[1];
	for (int k = 0; k < nin && k < 4; k++)
		if (in[k].data && in[k].dtype != KILN_U8 && in[k].dtype != KILN_I8)
			return rt_bad_dtype(f, loc, op, in[k].dtype);
	if (out[0].dtype != KILN_I32)
		return rt_bad_dtype(f, loc, op, out[0].dtype);
	if (A->rank < 2 || B->rank != 2 || A->dims[A->rank - 1] != B->dims[0])
		return rt_error(f, "node '%s' (%s): A [..., M, K] and B [K, N] do not match", loc, op);
	const rt_t *bzp = nin > 3 && in[3].data ? &in[3] : NULL;
	mmi_job j = {A, B, nin > 2 && in[2].data ? &in[2] : NULL, NULL, out[0].data, 0, B->dims[0],
	             B->dims[1], A->dims[A->rank - 2]};
	j.M = j.K ? rt_numel(A) / j.K : rt_numel(&out[0]) / (j.N ? j.N : 1);
	if (rt_numel(&out[0]) != j.M * j.N)
		return rt_error(f, "node '%s' (%s): output has the wrong size", loc, op);
	if (j.azp && rt_numel(j.azp) != 1 && rt_numel(j.azp) != j.rows_per_zp)
		return rt_error(f, "node '%s' (%s): a_zero_point must be a scalar or one per row", loc, op);
	if (bzp && rt_numel(bzp) != 1 && rt_numel(bzp) != j.N)
		return rt_error(f, "node '%s' (%s): b_zero_point must be a scalar or one per column", loc, op);
	if (j.M == 0 || j.N == 0)
		return 0;
	int32_t *bz = malloc(sizeof(int32_t) * (size_t)j.N);
	if (!bz)
		return rt_error(f, "node '%s' (%s): out of memory", loc, op);
	for (int64_t n = 0; n < j.N; n++)
		bz[n] = bzp ? qget(bzp, rt_numel(bzp) == 1 ? 0 : n) : 0;
	j.bz = bz;
	rt_par(f, j.M, j.K * j.N, mmi_rows, &j);
	free(bz);
	return 0;
}

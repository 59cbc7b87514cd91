/* kernels_reduce.c: reductions and normalizations: Reduce{Mean,Sum,Max,
 * Min,Prod,L2,SumSquare}, ArgMax/ArgMin, CumSum, Softmax, LogSoftmax,
 * LayerNormalization.
 *
 * Attributes: Reduce* ia=[keepdims, naxes, axes...] (sorted, positive;
 * naxes == 0: copy through, but for L2 and SumSquare); ArgMax/ArgMin ia=[axis, keepdims,
 * select_last_index]; CumSum ia=[exclusive, reverse], axis in in[1];
 * Softmax/LogSoftmax ia=[axis] (opset 13: one axis; f32 rows along the
 * last axis in AVX2 + FMA where the CPU has them); LayerNormalization
 * ia=[axis], fa=[epsilon]. */
#include <math.h>
#include <string.h>

#include "rt_internal.h"
#include "vmath.h"

/* input viewed as [outer, n, inner] around one axis */
static void around_axis(const rt_t *t, int axis, int64_t *outer, int64_t *n, int64_t *inner)
{
	*outer = *inner = 1;
	for (int d = 0; d < axis; d++)
		*outer *= t->dims[d];
	*n = t->dims[axis];
	for (int d = axis + 1; d < t->rank; d++)
		*inner *= t->dims[d];
}

/* ---- Reduce* ---- */

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L2, R_SUMSQ };

typedef struct red_job {
	int op;
	int32_t dt;
	const char *x;
	char *y;
	int nk, nr;                       /* kept and reduced dims (collapsed) */
	int64_t kd[KILN_MAX_RANK], ks[KILN_MAX_RANK];
	int64_t rd[KILN_MAX_RANK], rs[KILN_MAX_RANK];
	int64_t count;                    /* elements per output */
} red_job;

/* Accumulate one reduced row of n elements at stride s. */
#define RED_ROW(NAME, T, ACC) \
static ACC NAME(const T *x, int64_t n, int64_t s, int op, ACC acc) \
{ \
	switch (op) { \
	case R_SUM: case R_MEAN: \
		for (int64_t i = 0; i < n; i++) acc += (ACC)x[i * s]; \
		break; \
	case R_SUMSQ: case R_L2: \
		for (int64_t i = 0; i < n; i++) acc += (ACC)x[i * s] * (ACC)x[i * s]; \
		break; \
	case R_PROD: \
		for (int64_t i = 0; i < n; i++) acc *= (ACC)x[i * s]; \
		break; \
	case R_MAX: \
		for (int64_t i = 0; i < n; i++) if ((ACC)x[i * s] > acc || x[i * s] != x[i * s]) acc = (ACC)x[i * s]; \
		break; \
	case R_MIN: \
		for (int64_t i = 0; i < n; i++) if ((ACC)x[i * s] < acc || x[i * s] != x[i * s]) acc = (ACC)x[i * s]; \
		break; \
	} \
	return acc; \
}
RED_ROW(red_f32, float, double)
RED_ROW(red_f64, double, double)
RED_ROW(red_i32, int32_t, int64_t)
RED_ROW(red_i64, int64_t, int64_t)

static double init_f(int op)
{
	return op == R_PROD ? 1.0 : op == R_MAX ? -INFINITY : op == R_MIN ? INFINITY : 0.0;
}

static int64_t init_i(int op)
{
	return op == R_PROD ? 1 : op == R_MAX ? INT64_MIN : op == R_MIN ? INT64_MAX : 0;
}

/* one output element: walk the reduced dims (odometer), last one as a row */
static void red_one(const red_job *j, int64_t base, int64_t o)
{
	int64_t idx[KILN_MAX_RANK] = {0};
	int nr = j->nr;
	int64_t rows = 1;
	for (int d = 0; d < nr - 1; d++)
		rows *= j->rd[d];
	int64_t n = nr ? j->rd[nr - 1] : 1, s = nr ? j->rs[nr - 1] : 1;
	double af = init_f(j->op);
	int64_t ai = init_i(j->op);
	if (j->count == 0)
		rows = 0;
	for (int64_t r = 0; r < rows; r++) {
		int64_t off = base;
		for (int d = 0; d < nr - 1; d++)
			off += idx[d] * j->rs[d];
		switch (j->dt) {
		case KILN_F32: af = red_f32((const float *)j->x + off, n, s, j->op, af); break;
		case KILN_F64: af = red_f64((const double *)j->x + off, n, s, j->op, af); break;
		case KILN_I32: ai = red_i32((const int32_t *)j->x + off, n, s, j->op, ai); break;
		default: ai = red_i64((const int64_t *)j->x + off, n, s, j->op, ai); break;
		}
		for (int d = nr - 2; d >= 0; d--) {
			if (++idx[d] < j->rd[d])
				break;
			idx[d] = 0;
		}
	}
	if (j->op == R_MEAN) {
		af = af / (double)j->count;
		ai = j->count ? ai / j->count : 0;
	} else if (j->op == R_L2) {
		af = sqrt(af);
		ai = (int64_t)sqrt((double)ai);
	}
	switch (j->dt) {
	case KILN_F32: ((float *)j->y)[o] = (float)af; break;
	case KILN_F64: ((double *)j->y)[o] = af; break;
	case KILN_I32: ((int32_t *)j->y)[o] = (int32_t)ai; break;
	default: ((int64_t *)j->y)[o] = ai; break;
	}
}

static void red_range(void *arg, int64_t b, int64_t e)
{
	red_job *j = arg;
	int64_t idx[KILN_MAX_RANK] = {0}, rem = b;
	for (int d = j->nk - 1; d >= 0; d--) {
		idx[d] = rem % j->kd[d];
		rem /= j->kd[d];
	}
	for (int64_t o = b; o < e; o++) {
		int64_t base = 0;
		for (int d = 0; d < j->nk; d++)
			base += idx[d] * j->ks[d];
		red_one(j, base, o);
		for (int d = j->nk - 1; d >= 0; d--) {
			if (++idx[d] < j->kd[d])
				break;
			idx[d] = 0;
		}
	}
}

static int reduce(kiln_frame *f, const char *loc, const char *opname, int op, const rt_t *in,
                  rt_t *out, const int64_t *ia, int32_t nia)
{
	int32_t dt = in->dtype;
	if (dt != KILN_F32 && dt != KILN_F64 && dt != KILN_I32 && dt != KILN_I64)
		return rt_bad_dtype(f, loc, opname, dt);
	if (out->dtype != dt)
		return rt_error(f, "node '%s' (%s): output dtype differs from input", loc, opname);
	int64_t naxes = nia > 1 ? ia[1] : 0;
	if (naxes < 0 || nia < 2 + naxes)
		return rt_error(f, "node '%s' (%s): bad attributes", loc, opname);
	/* no axis reduced (noop_with_empty_axes, or a rank-0 input): the
	 * identity, but L2 and SumSquare still square (and root) each
	 * element, as ONNX Runtime and the ONNX reference do */
	if (naxes == 0 && op != R_L2 && op != R_SUMSQ) {
		size_t nb = (size_t)rt_numel(in) * rt_dtype_size(dt);
		if (nb && out->data != in->data)
			memmove(out->data, in->data, nb);
		return 0;
	}
	bool red[KILN_MAX_RANK] = {0};
	for (int64_t k = 0; k < naxes; k++) {
		int64_t a = ia[2 + k];
		if (a < 0 || a >= in->rank)
			return rt_error(f, "node '%s' (%s): axis %lld out of range for rank %d", loc,
			                opname, (long long)a, in->rank);
		red[a] = true;
	}
	red_job j = { .op = op, .dt = dt, .x = in->data, .y = out->data, .count = 1 };
	int64_t stride[KILN_MAX_RANK], s = 1, nout = 1;
	for (int d = in->rank - 1; d >= 0; d--) {
		stride[d] = s;
		s *= in->dims[d];
	}
	for (int d = 0; d < in->rank; d++) {
		int64_t n = in->dims[d];
		if (red[d]) {
			j.count *= n;
			if (n == 1)
				continue;
			if (j.nr && red[d - 1] && j.rs[j.nr - 1] == stride[d] * n) {
				j.rd[j.nr - 1] *= n;
				j.rs[j.nr - 1] = stride[d];
			} else {
				j.rd[j.nr] = n;
				j.rs[j.nr++] = stride[d];
			}
		} else {
			nout *= n;
			if (n == 1)
				continue;
			j.kd[j.nk] = n;
			j.ks[j.nk++] = stride[d];
		}
	}
	if (nout != rt_numel(out))
		return rt_error(f, "node '%s' (%s): output has %lld elements, expected %lld", loc,
		                opname, (long long)rt_numel(out), (long long)nout);
	rt_par(f, nout, j.count + 1, red_range, &j);
	return 0;
}

#define REDUCE_KERNEL(Name, OP) \
	RT_KERNEL(Name) \
	{ \
		int64_t ax[2 + KILN_MAX_RANK]; \
		if (nia > 1 && ia[1] == -1) {   /* axes given at run time (kernels_shape.c) */ \
			if (rt_reduce_axes(f, loc, #Name, in, nin, ia, ax, &nia)) \
				return 1; \
			ia = ax; \
		} \
		return reduce(f, loc, #Name, OP, &in[0], &out[0], ia, nia); \
	}
REDUCE_KERNEL(ReduceSum, R_SUM)
REDUCE_KERNEL(ReduceMean, R_MEAN)
REDUCE_KERNEL(ReduceMax, R_MAX)
REDUCE_KERNEL(ReduceMin, R_MIN)
REDUCE_KERNEL(ReduceProd, R_PROD)
REDUCE_KERNEL(ReduceL2, R_L2)
REDUCE_KERNEL(ReduceSumSquare, R_SUMSQ)

/* ---- ArgMax / ArgMin ---- */

#define ARG_LOOP(T) do { \
	const T *x = in->data; \
	for (int64_t o = 0; o < outer; o++) \
		for (int64_t i = 0; i < inner; i++) { \
			const T *p = x + o * n * inner + i; \
			int64_t best = 0; \
			for (int64_t k = 1; k < n; k++) { \
				T v = p[k * inner], b = p[best * inner]; \
				bool better = ismax ? (last ? v >= b : v > b) : (last ? v <= b : v < b); \
				if (better) best = k; \
			} \
			y[o * inner + i] = best; \
		} \
} while (0)

static int arg(kiln_frame *f, const char *loc, const char *op, bool ismax, const rt_t *in,
               rt_t *out, const int64_t *ia, int32_t nia)
{
	int64_t axis = nia > 0 ? ia[0] : 0;
	bool last = nia > 2 && ia[2];
	if (axis < 0 || axis >= in->rank)
		return rt_error(f, "node '%s' (%s): axis %lld out of range", loc, op, (long long)axis);
	if (out->dtype != KILN_I64)
		return rt_error(f, "node '%s' (%s): output must be i64", loc, op);
	int64_t outer, n, inner;
	around_axis(in, (int)axis, &outer, &n, &inner);
	if (n == 0 && outer * inner > 0)
		return rt_error(f, "node '%s' (%s): reducing an empty axis", loc, op);
	int64_t *y = out->data;
	switch (in->dtype) {
	case KILN_F32: ARG_LOOP(float); break;
	case KILN_F64: ARG_LOOP(double); break;
	case KILN_I64: ARG_LOOP(int64_t); break;
	case KILN_I32: ARG_LOOP(int32_t); break;
	case KILN_I8: ARG_LOOP(int8_t); break;
	case KILN_U8: ARG_LOOP(uint8_t); break;
	default: return rt_bad_dtype(f, loc, op, in->dtype);
	}
	return 0;
}

RT_KERNEL(ArgMax) { return arg(f, loc, "ArgMax", true, &in[0], &out[0], ia, nia); }
RT_KERNEL(ArgMin) { return arg(f, loc, "ArgMin", false, &in[0], &out[0], ia, nia); }

/* ---- CumSum ---- */

#define CUMSUM_LOOP(T) do { \
	const T *x = in[0].data; \
	T *y = out[0].data; \
	for (int64_t o = 0; o < outer; o++) \
		for (int64_t i = 0; i < inner; i++) { \
			T acc = 0; \
			for (int64_t t = 0; t < n; t++) { \
				int64_t k = rev ? n - 1 - t : t; \
				int64_t at = (o * n + k) * inner + i; \
				T v = x[at]; \
				if (excl) { y[at] = acc; acc += v; } \
				else { acc += v; y[at] = acc; } \
			} \
		} \
} while (0)

RT_KERNEL(CumSum)
{
	if (nin < 2 || !in[1].data || rt_numel(&in[1]) != 1 ||
	    (in[1].dtype != KILN_I32 && in[1].dtype != KILN_I64))
		return rt_error(f, "node '%s' (CumSum): axis must be an i32/i64 scalar", loc);
	int64_t axis = rt_get_i64(in[1].data, in[1].dtype, 0);
	if (axis < 0)
		axis += in[0].rank;
	if (axis < 0 || axis >= in[0].rank)
		return rt_error(f, "node '%s' (CumSum): axis %lld out of range for rank %d", loc,
		                (long long)rt_get_i64(in[1].data, in[1].dtype, 0), in[0].rank);
	bool excl = nia > 0 && ia[0], rev = nia > 1 && ia[1];
	int64_t outer, n, inner;
	around_axis(&in[0], (int)axis, &outer, &n, &inner);
	switch (in[0].dtype) {
	case KILN_F32: CUMSUM_LOOP(float); break;
	case KILN_F64: CUMSUM_LOOP(double); break;
	case KILN_I32: CUMSUM_LOOP(int32_t); break;
	case KILN_I64: CUMSUM_LOOP(int64_t); break;
	default: return rt_bad_dtype(f, loc, "CumSum", in[0].dtype);
	}
	return 0;
}

/* ---- Softmax / LogSoftmax ---- */

typedef struct sm_job {
	const void *x;
	void *y;
	int64_t n, inner;
	bool log;
	bool f64;
	bool avx2;               /* f32 rows along the last axis, in 8 lanes */
} sm_job;

#define SM_ROW(NAME, T, EXP, LOG) \
static void NAME(const T *x, T *y, int64_t n, int64_t s, bool lg) \
{ \
	T mx = -INFINITY; \
	for (int64_t k = 0; k < n; k++) \
		mx = x[k * s] > mx ? x[k * s] : mx; \
	if (mx == -INFINITY) mx = 0;  /* all -inf: avoid inf - inf */ \
	T sum = 0; \
	if (s == 1) { \
		for (int64_t k = 0; k < n; k++) { y[k] = EXP(x[k] - mx); sum += y[k]; } \
	} else { \
		for (int64_t k = 0; k < n; k++) { y[k * s] = EXP(x[k * s] - mx); sum += y[k * s]; } \
	} \
	if (lg) { \
		T ls = LOG(sum) + mx; \
		for (int64_t k = 0; k < n; k++) y[k * s] = x[k * s] - ls; \
	} else { \
		T inv = 1 / sum; \
		for (int64_t k = 0; k < n; k++) y[k * s] *= inv; \
	} \
}
SM_ROW(sm_row_f32, float, expf, logf)
SM_ROW(sm_row_f64, double, exp, log)

#if defined(__x86_64__)
/* sm_row_f32 on a contiguous row in 8 lanes (vmath.h's vm_exp8: results
 * below exp(-87) are 0); the tail through a buffer of -inf */
VM_AVX2
static void sm_row_avx2(const float *x, float *y, int64_t n, bool lg)
{
	__m256 ninf = _mm256_set1_ps(-INFINITY), v = ninf, acc = _mm256_setzero_ps();
	int64_t k = 0;
	for (; k + 8 <= n; k += 8)
		v = _mm256_max_ps(_mm256_loadu_ps(x + k), v);   /* v where x is NaN, as `>` */
	float t[8], mx = vm_hmax8(v);
	for (int64_t i = k; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	if (mx == -INFINITY)
		mx = 0;       /* all -inf: avoid inf - inf */
	__m256 m = _mm256_set1_ps(mx);
	for (k = 0; k + 8 <= n; k += 8) {
		__m256 e = vm_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + k), m));
		if (!lg)
			_mm256_storeu_ps(y + k, e);
		acc = _mm256_add_ps(acc, e);
	}
	if (k < n) {
		_mm256_storeu_ps(t, ninf);
		memcpy(t, x + k, (size_t)(n - k) * sizeof *t);
		__m256 e = vm_exp8(_mm256_sub_ps(_mm256_loadu_ps(t), m));
		_mm256_storeu_ps(t, e);
		if (!lg)
			memcpy(y + k, t, (size_t)(n - k) * sizeof *t);
		acc = _mm256_add_ps(acc, e);
	}
	float sum = vm_hsum8(acc);
	/* y = x - (log(sum) + max), or y * (1 / sum) */
	__m256 c = _mm256_set1_ps(lg ? logf(sum) + mx : 1 / sum);
	for (k = 0; k + 8 <= n; k += 8)
		_mm256_storeu_ps(y + k, lg ? _mm256_sub_ps(_mm256_loadu_ps(x + k), c) :
		                             _mm256_mul_ps(_mm256_loadu_ps(y + k), c));
	for (; k < n; k++)
		y[k] = lg ? x[k] - (logf(sum) + mx) : y[k] * (1 / sum);
}
#endif

/* rows [b, e) of outer * inner */
static void sm_range(void *arg, int64_t b, int64_t e)
{
	const sm_job *j = arg;
	for (int64_t r = b; r < e; r++) {
		int64_t o = r / j->inner, i = r % j->inner;
		int64_t at = o * j->n * j->inner + i;
#if defined(__x86_64__)
		if (j->avx2) {
			sm_row_avx2((const float *)j->x + at, (float *)j->y + at, j->n, j->log);
			continue;
		}
#endif
		if (j->f64)
			sm_row_f64((const double *)j->x + at, (double *)j->y + at, j->n, j->inner, j->log);
		else
			sm_row_f32((const float *)j->x + at, (float *)j->y + at, j->n, j->inner, j->log);
	}
}

static int softmax(kiln_frame *f, const char *loc, const char *op, bool log, const rt_t *in,
                   rt_t *out, const int64_t *ia, int32_t nia)
{
	int64_t axis = nia > 0 ? ia[0] : in->rank - 1;
	if (in->dtype != KILN_F32 && in->dtype != KILN_F64)
		return rt_bad_dtype(f, loc, op, in->dtype);
	if (in->rank == 0) {           /* a scalar: softmax 1, log-softmax 0 */
		rt_set_f64(out->data, out->dtype, 0, log ? 0.0 : 1.0);
		return 0;
	}
	if (axis < 0 || axis >= in->rank)
		return rt_error(f, "node '%s' (%s): axis %lld out of range for rank %d", loc, op,
		                (long long)axis, in->rank);
	sm_job j = { .x = in->data, .y = out->data, .log = log, .f64 = in->dtype == KILN_F64 };
	int64_t outer;
	around_axis(in, (int)axis, &outer, &j.n, &j.inner);
	if (j.n == 0)
		return 0;
#if defined(__x86_64__)
	j.avx2 = !j.f64 && j.inner == 1 && vm_have_avx2();
#endif
	rt_par(f, outer * j.inner, j.n * 8, sm_range, &j);
	return 0;
}

RT_KERNEL(Softmax) { return softmax(f, loc, "Softmax", false, &in[0], &out[0], ia, nia); }
RT_KERNEL(LogSoftmax) { return softmax(f, loc, "LogSoftmax", true, &in[0], &out[0], ia, nia); }

/* ---- LayerNormalization ---- */

typedef struct ln_job {
	const float *x, *scale, *bias;
	float *y, *mean, *inv;
	int64_t n;
	bool scale1, bias1;     /* one-element scale/bias, broadcast */
	float eps;
} ln_job;

static void ln_range(void *arg, int64_t b, int64_t e)
{
	const ln_job *j = arg;
	int64_t n = j->n;
	for (int64_t r = b; r < e; r++) {
		const float *x = j->x + r * n;
		float *y = j->y + r * n;
		double s = 0;
		for (int64_t k = 0; k < n; k++)
			s += x[k];
		float mean = (float)(s / (double)n);
		double v = 0;
		for (int64_t k = 0; k < n; k++)
			v += (double)(x[k] - mean) * (x[k] - mean);
		float inv = (float)(1.0 / sqrt(v / (double)n + j->eps));
		for (int64_t k = 0; k < n; k++) {
			float g = j->scale[j->scale1 ? 0 : k];
			float bb = j->bias ? j->bias[j->bias1 ? 0 : k] : 0.0f;
			y[k] = (x[k] - mean) * inv * g + bb;
		}
		if (j->mean)
			j->mean[r] = mean;
		if (j->inv)
			j->inv[r] = inv;
	}
}

RT_KERNEL(LayerNormalization)
{
	int64_t axis = nia > 0 ? ia[0] : in[0].rank - 1;
	if (in[0].dtype != KILN_F32)
		return rt_bad_dtype(f, loc, "LayerNormalization", in[0].dtype);
	if (axis < 0 || axis > in[0].rank)
		return rt_error(f, "node '%s' (LayerNormalization): axis %lld out of range for rank %d",
		                loc, (long long)axis, in[0].rank);
	int64_t outer = 1, n = 1;
	for (int d = 0; d < in[0].rank; d++)
		*(d < axis ? &outer : &n) *= in[0].dims[d];
	ln_job j = { .x = in[0].data, .y = out[0].data, .n = n,
	             .eps = nfa > 0 ? fa[0] : 1e-5f };
	for (int k = 1; k < 3; k++) {
		if (k >= nin || !in[k].data) {
			if (k == 1)
				return rt_error(f, "node '%s' (LayerNormalization): missing scale", loc);
			continue;
		}
		int64_t m = rt_numel(&in[k]);
		if (in[k].dtype != KILN_F32 || (m != n && m != 1))
			return rt_error(f, "node '%s' (LayerNormalization): %s has %lld elements, "
			                "normalized size is %lld", loc, k == 1 ? "scale" : "bias",
			                (long long)m, (long long)n);
		if (k == 1) {
			j.scale = in[k].data;
			j.scale1 = m == 1 && n != 1;
		} else {
			j.bias = in[k].data;
			j.bias1 = m == 1 && n != 1;
		}
	}
	if (nout > 1 && out[1].data)
		j.mean = out[1].data;
	if (nout > 2 && out[2].data)
		j.inv = out[2].data;
	if (n == 0)
		return 0;
	rt_par(f, outer, n * 6, ln_range, &j);
	return 0;
}

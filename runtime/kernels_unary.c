/* kernels_unary.c: elementwise one-input ops (math, activations, Not,
 * IsNaN/IsInf), Cast, Identity, Dropout and Clip.
 *
 * Attributes: LeakyRelu fa=[alpha]; Elu fa=[alpha]; HardSigmoid
 * fa=[alpha, beta]; Gelu ia=[approximate: 0 none, 1 tanh]; IsInf
 * ia=[detect_negative, detect_positive]; Cast: target is out[0].dtype
 * (f32 f64 f16 bf16 and every integer type, bool);
 * Clip: min/max scalars in[1], in[2] (absent: the dtype's lowest and max). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "rt_internal.h"

typedef struct un_aux {
	double a, b;                    /* float parameters */
	int64_t ia, ib;                 /* integer parameters */
	int32_t dt;                     /* Cast: source dtype */
	int32_t odt;                    /* Cast: target dtype */
} un_aux;

/* One inner function per (op, type).  x is the element, A the un_aux. */
#define UN_FN(NAME, TI, TO, EXPR) \
static void NAME(const void *const *p_, const int64_t *s_, void *o_, int64_t n, \
                 const void *aux_) \
{ \
	const TI *xp = p_[0]; \
	TO *y = o_; \
	const un_aux *A = aux_; \
	(void)A; \
	if (s_[0] == 0 && n > 1) { \
		TI x = xp[0]; \
		TO v = (TO)(EXPR); \
		for (int64_t i = 0; i < n; i++) \
			y[i] = v; \
		return; \
	} \
	for (int64_t i = 0; i < n; i++) { \
		TI x = xp[i]; \
		y[i] = (TO)(EXPR); \
	} \
}

typedef struct un_impl { int32_t dt; rt_inner_fn fn; } un_impl;

static int unary(kiln_frame *f, const char *loc, const char *op, const rt_t *in, rt_t *out,
                 const un_impl *impl, const un_aux *aux)
{
	for (; impl->fn; impl++)
		if (impl->dt == in->dtype) {
			const rt_t *ins[1] = { in };
			return rt_elementwise(f, loc, op, ins, 1, out, impl->fn, aux);
		}
	return rt_bad_dtype(f, loc, op, in->dtype);
}

/* float-only ops: EF on float, ED on double */
#define FLOAT_OP(Name, EF, ED) \
	UN_FN(Name##_f32, float, float, EF) \
	UN_FN(Name##_f64, double, double, ED) \
	static const un_impl Name##_impl[] = { \
		{ KILN_F32, Name##_f32 }, { KILN_F64, Name##_f64 }, { 0, NULL } };

/* numeric ops: EF on floats, EI on signed integers */
#define NUM_OP(Name, EF, EI) \
	UN_FN(Name##_f32, float, float, EF) \
	UN_FN(Name##_f64, double, double, EF) \
	UN_FN(Name##_i64, int64_t, int64_t, EI) \
	UN_FN(Name##_i32, int32_t, int32_t, EI) \
	UN_FN(Name##_i8, int8_t, int8_t, EI) \
	static const un_impl Name##_impl[] = { \
		{ KILN_F32, Name##_f32 }, { KILN_F64, Name##_f64 }, { KILN_I64, Name##_i64 }, \
		{ KILN_I32, Name##_i32 }, { KILN_I8, Name##_i8 }, { 0, NULL } };

#define SIMPLE_KERNEL(Name) \
	RT_KERNEL(Name) \
	{ \
		un_aux a = {0}; \
		return unary(f, loc, #Name, &in[0], &out[0], Name##_impl, &a); \
	}

/* wrapping negation: no UB on INT_MIN */
#define WNEG(x) (0 - (uint64_t)(x))

static inline float softplusf(float x)
{
	return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

static inline double softplus(double x)
{
	return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

NUM_OP(Abs, x < 0 ? -x : x, x < 0 ? WNEG(x) : (uint64_t)x)
NUM_OP(Neg, -x, WNEG(x))
/* NaN stays NaN (Relu, Sign, HardSigmoid), as in numpy and ONNX Runtime */
NUM_OP(Relu, x > 0 || x != x ? x : 0, x > 0 ? x : 0)
NUM_OP(Sign, x != x ? x : (x > 0) - (x < 0), (x > 0) - (x < 0))
FLOAT_OP(Exp, expf(x), exp(x))
FLOAT_OP(Log, logf(x), log(x))
FLOAT_OP(Sqrt, sqrtf(x), sqrt(x))
FLOAT_OP(Reciprocal, 1.0f / x, 1.0 / x)
FLOAT_OP(Sigmoid, 1.0f / (1.0f + expf(-x)), 1.0 / (1.0 + exp(-x)))
FLOAT_OP(Tanh, tanhf(x), tanh(x))
FLOAT_OP(Erf, erff(x), erf(x))
FLOAT_OP(Cos, cosf(x), cos(x))
FLOAT_OP(Sin, sinf(x), sin(x))
FLOAT_OP(Floor, floorf(x), floor(x))
FLOAT_OP(Ceil, ceilf(x), ceil(x))
FLOAT_OP(Round, nearbyintf(x), nearbyint(x))    /* default mode: half to even */
FLOAT_OP(Softplus, softplusf(x), softplus(x))
FLOAT_OP(LeakyRelu, x >= 0 ? x : (float)A->a * x, x >= 0 ? x : A->a * x)
FLOAT_OP(Elu, x >= 0 ? x : (float)A->a * expm1f(x), x >= 0 ? x : A->a * expm1(x))
FLOAT_OP(HardSigmoid, x != x ? x : fmaxf(0.0f, fminf(1.0f, (float)A->a * x + (float)A->b)),
         x != x ? x : fmax(0.0, fmin(1.0, A->a * x + A->b)))
FLOAT_OP(GeluErf, 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)),
         0.5 * x * (1.0 + erf(x * 0.70710678118654752)))
FLOAT_OP(GeluTanh, 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x))),
         0.5 * x * (1.0 + tanh(0.79788456080286536 * (x + 0.044715 * x * x * x))))

SIMPLE_KERNEL(Abs)
SIMPLE_KERNEL(Neg)
SIMPLE_KERNEL(Relu)
SIMPLE_KERNEL(Sign)
SIMPLE_KERNEL(Exp)
SIMPLE_KERNEL(Log)
SIMPLE_KERNEL(Sqrt)
SIMPLE_KERNEL(Reciprocal)
SIMPLE_KERNEL(Sigmoid)
SIMPLE_KERNEL(Tanh)
SIMPLE_KERNEL(Erf)
SIMPLE_KERNEL(Cos)
SIMPLE_KERNEL(Sin)
SIMPLE_KERNEL(Floor)
SIMPLE_KERNEL(Ceil)
SIMPLE_KERNEL(Round)
SIMPLE_KERNEL(Softplus)

static double fa_or(const float *fa, int32_t nfa, int i, double def)
{
	return fa && i < nfa ? fa[i] : def;
}

RT_KERNEL(LeakyRelu)
{
	un_aux a = { .a = fa_or(fa, nfa, 0, 0.01) };
	return unary(f, loc, "LeakyRelu", &in[0], &out[0], LeakyRelu_impl, &a);
}

RT_KERNEL(Elu)
{
	un_aux a = { .a = fa_or(fa, nfa, 0, 1.0) };
	return unary(f, loc, "Elu", &in[0], &out[0], Elu_impl, &a);
}

RT_KERNEL(HardSigmoid)
{
	un_aux a = { .a = fa_or(fa, nfa, 0, 0.2), .b = fa_or(fa, nfa, 1, 0.5) };
	return unary(f, loc, "HardSigmoid", &in[0], &out[0], HardSigmoid_impl, &a);
}

RT_KERNEL(Gelu)
{
	un_aux a = {0};
	bool tanh_approx = nia > 0 && ia[0] == 1;
	return unary(f, loc, "Gelu", &in[0], &out[0], tanh_approx ? GeluTanh_impl : GeluErf_impl, &a);
}

/* ---- predicates: -> bool ---- */

UN_FN(Not_b, uint8_t, uint8_t, !x)
UN_FN(IsNaN_f32, float, uint8_t, x != x)
UN_FN(IsNaN_f64, double, uint8_t, x != x)
UN_FN(IsInf_f32, float, uint8_t, (A->ia && x == -INFINITY) || (A->ib && x == INFINITY))
UN_FN(IsInf_f64, double, uint8_t, (A->ia && x == -INFINITY) || (A->ib && x == INFINITY))
static const un_impl Not_impl[] = { { KILN_BOOL, Not_b }, { 0, NULL } };
static const un_impl IsNaN_impl[] = { { KILN_F32, IsNaN_f32 }, { KILN_F64, IsNaN_f64 }, { 0, NULL } };
static const un_impl IsInf_impl[] = { { KILN_F32, IsInf_f32 }, { KILN_F64, IsInf_f64 }, { 0, NULL } };
SIMPLE_KERNEL(Not)
SIMPLE_KERNEL(IsNaN)

RT_KERNEL(IsInf)
{
	un_aux a = { .ia = nia > 0 ? ia[0] : 1, .ib = nia > 1 ? ia[1] : 1 };
	return unary(f, loc, "IsInf", &in[0], &out[0], IsInf_impl, &a);
}

/* ---- Identity, Dropout ---- */

static void copy_data(const rt_t *in, rt_t *out)
{
	size_t n = (size_t)rt_numel(out) * rt_dtype_size(out->dtype);
	if (n && out->data != in->data)
		memmove(out->data, in->data, n);
}

RT_KERNEL(Identity)
{
	if (in[0].dtype != out[0].dtype || rt_numel(&in[0]) != rt_numel(&out[0]))
		return rt_error(f, "node '%s' (Identity): input and output differ", loc);
	copy_data(&in[0], &out[0]);
	return 0;
}

RT_KERNEL(Dropout)
{
	if (in[0].dtype != out[0].dtype || rt_numel(&in[0]) != rt_numel(&out[0]))
		return rt_error(f, "node '%s' (Dropout): input and output differ", loc);
	copy_data(&in[0], &out[0]);
	if (nout > 1 && out[1].data)
		memset(out[1].data, 1, (size_t)rt_numel(&out[1]));
	return 0;
}

/* ---- Clip ---- */

/* min(max(x, LO), HI): with LO > HI every element becomes HI (Clip-13's
 * "when min is greater than max, ... the value of max", numpy.clip) */
#define CLIP_FN(NAME, T, LO, HI) \
	UN_FN(NAME, T, T, (x < (T)(LO) ? (T)(LO) : x) > (T)(HI) ? (T)(HI) : (x < (T)(LO) ? (T)(LO) : x))
CLIP_FN(Clip_f32, float, A->a, A->b)
CLIP_FN(Clip_f64, double, A->a, A->b)
CLIP_FN(Clip_i64, int64_t, A->ia, A->ib)
CLIP_FN(Clip_i32, int32_t, A->ia, A->ib)
CLIP_FN(Clip_i8, int8_t, A->ia, A->ib)
CLIP_FN(Clip_u8, uint8_t, A->ia, A->ib)
static const un_impl Clip_impl[] = {
	{ KILN_F32, Clip_f32 }, { KILN_F64, Clip_f64 }, { KILN_I64, Clip_i64 },
	{ KILN_I32, Clip_i32 }, { KILN_I8, Clip_i8 }, { KILN_U8, Clip_u8 }, { 0, NULL } };

RT_KERNEL(Clip)
{
	int32_t dt = in[0].dtype;
	/* absent bounds are numeric_limits::lowest() and max() (Clip-11..13):
	 * an infinity becomes the largest finite value */
	un_aux a = { .a = dt == KILN_F32 ? -FLT_MAX : -DBL_MAX, .b = dt == KILN_F32 ? FLT_MAX : DBL_MAX };
	switch (dt) {
	case KILN_I64: a.ia = INT64_MIN; a.ib = INT64_MAX; break;
	case KILN_I32: a.ia = INT32_MIN; a.ib = INT32_MAX; break;
	case KILN_I8: a.ia = INT8_MIN; a.ib = INT8_MAX; break;
	case KILN_U8: a.ia = 0; a.ib = UINT8_MAX; break;
	default: break;
	}
	for (int k = 1; k <= 2; k++) {
		if (nin <= k || !in[k].data)
			continue;
		if (in[k].dtype != dt || rt_numel(&in[k]) != 1)
			return rt_error(f, "node '%s' (Clip): %s must be a %s scalar", loc,
			                k == 1 ? "min" : "max", rt_dtype_name(dt));
		if (k == 1) {
			a.a = rt_get_f64(in[k].data, dt, 0);
			a.ia = rt_get_i64(in[k].data, dt, 0);
		} else {
			a.b = rt_get_f64(in[k].data, dt, 0);
			a.ib = rt_get_i64(in[k].data, dt, 0);
		}
	}
	return unary(f, loc, "Clip", &in[0], &out[0], Clip_impl, &a);
}

/* ---- Cast ---- */

/* Saturating float -> integer (ONNX leaves out-of-range undefined; C would
 * make it UB).  NaN -> 0. */
#define SAT(T, LO, HI, v) ((v) != (v) ? (T)0 : (v) <= (LO) ? (T)(LO) : (v) >= (HI) ? (T)(HI) : (T)(v))

UN_FN(cast_f32_i64, float, int64_t, SAT(int64_t, -9.2233720368547758e18f, 9.2233720368547758e18f, x))
UN_FN(cast_f32_i32, float, int32_t, SAT(int32_t, -2147483648.0f, 2147483647.0f, x))
UN_FN(cast_f32_bool, float, uint8_t, x != 0)
UN_FN(cast_i64_f32, int64_t, float, x)
UN_FN(cast_i32_f32, int32_t, float, x)
UN_FN(cast_bool_f32, uint8_t, float, x != 0)
UN_FN(cast_i64_i32, int64_t, int32_t, x)
UN_FN(cast_i32_i64, int32_t, int64_t, x)
UN_FN(cast_bool_i64, uint8_t, int64_t, x != 0)
UN_FN(cast_bool_i32, uint8_t, int32_t, x != 0)
UN_FN(cast_i64_bool, int64_t, uint8_t, x != 0)
UN_FN(cast_i32_bool, int32_t, uint8_t, x != 0)
UN_FN(cast_f32_f64, float, double, x)
UN_FN(cast_f64_f32, double, float, x)
UN_FN(cast_f32_f16, float, uint16_t, rt_f32_to_f16(x))
UN_FN(cast_f16_f32, uint16_t, float, rt_f16_to_f32(x))
UN_FN(cast_f32_bf16, float, uint16_t, rt_f32_to_bf16(x))
UN_FN(cast_bf16_f32, uint16_t, float, rt_bf16_to_f32(x))

static const struct { int32_t from, to; rt_inner_fn fn; } cast_fast[] = {
	{ KILN_F32, KILN_I64, cast_f32_i64 }, { KILN_F32, KILN_I32, cast_f32_i32 },
	{ KILN_F32, KILN_BOOL, cast_f32_bool }, { KILN_I64, KILN_F32, cast_i64_f32 },
	{ KILN_I32, KILN_F32, cast_i32_f32 }, { KILN_BOOL, KILN_F32, cast_bool_f32 },
	{ KILN_I64, KILN_I32, cast_i64_i32 }, { KILN_I32, KILN_I64, cast_i32_i64 },
	{ KILN_BOOL, KILN_I64, cast_bool_i64 }, { KILN_BOOL, KILN_I32, cast_bool_i32 },
	{ KILN_I64, KILN_BOOL, cast_i64_bool }, { KILN_I32, KILN_BOOL, cast_i32_bool },
	{ KILN_F32, KILN_F64, cast_f32_f64 }, { KILN_F64, KILN_F32, cast_f64_f32 },
	{ KILN_F32, KILN_F16, cast_f32_f16 }, { KILN_F16, KILN_F32, cast_f16_f32 },
	{ KILN_F32, KILN_BF16, cast_f32_bf16 }, { KILN_BF16, KILN_F32, cast_bf16_f32 },
};

static bool is_int(int32_t dt)
{
	return dt == KILN_I64 || dt == KILN_I32 || dt == KILN_I16 || dt == KILN_I8 ||
	       dt == KILN_U8 || dt == KILN_U16 || dt == KILN_U32 || dt == KILN_U64 ||
	       dt == KILN_BOOL;
}

/* integer -> integer: wraps to the target width, like ONNX (and GCC) */
static void set_i64(void *p, int32_t dt, int64_t i, int64_t v)
{
	switch (dt) {
	case KILN_I64: case KILN_U64: ((int64_t *)p)[i] = v; break;
	case KILN_I32: case KILN_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
	case KILN_I16: case KILN_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
	case KILN_I8: case KILN_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
	case KILN_BOOL: ((uint8_t *)p)[i] = v != 0; break;
	default: break;
	}
}

/* generic path, one element at a time (rare pairs) */
static void cast_any(const void *const *p, const int64_t *s, void *o, int64_t n, const void *aux)
{
	const un_aux *A = aux;
	for (int64_t i = 0; i < n; i++) {
		int64_t j = i * s[0];
		if (is_int(A->dt) && is_int(A->odt))
			set_i64(o, A->odt, i, rt_get_i64(p[0], A->dt, j));
		else if (A->dt == KILN_BOOL)
			rt_set_f64(o, A->odt, i, rt_get_i64(p[0], A->dt, j) != 0);
		else
			rt_set_f64(o, A->odt, i, rt_get_f64(p[0], A->dt, j));
	}
}

RT_KERNEL(Cast)
{
	int32_t from = in[0].dtype, to = out[0].dtype;
	if (!rt_dtype_size(from) || !rt_dtype_size(to))
		return rt_error(f, "node '%s' (Cast): cannot cast %s to %s", loc,
		                rt_dtype_name(from), rt_dtype_name(to));
	if (rt_numel(&in[0]) != rt_numel(&out[0]))
		return rt_error(f, "node '%s' (Cast): input and output sizes differ", loc);
	if (from == to) {
		copy_data(&in[0], &out[0]);
		return 0;
	}
	un_aux a = { .dt = from, .odt = to };
	rt_inner_fn fn = cast_any;
	for (size_t i = 0; i < sizeof cast_fast / sizeof cast_fast[0]; i++)
		if (cast_fast[i].from == from && cast_fast[i].to == to)
			fn = cast_fast[i].fn;
	const rt_t *ins[1] = { &in[0] };
	return rt_elementwise(f, loc, "Cast", ins, 1, &out[0], fn, &a);
}

/* kernels_binary.c: elementwise ops over broadcast inputs: arithmetic (Add
 * Sub Mul Div Pow Mod), comparisons and logic (-> bool), the variadic Max
 * Min Sum Mean, and Where.
 *
 * Attributes: Mod ia=[fmod].  Integer arithmetic wraps; integer Div
 * truncates toward zero (division by zero gives 0 instead of a trap). */
#include <math.h>

#include "rt_internal.h"

typedef struct bin_aux { int32_t adt, bdt, odt; int64_t fmod; } bin_aux;

/* Inner function over a row: a, b are the elements, A the bin_aux. */
#define BIN_FN(NAME, TA, TO, EXPR) \
static void NAME(const void *const *p_, const int64_t *s_, void *o_, int64_t n, \
                 const void *aux_) \
{ \
	const TA *ap = p_[0], *bp = p_[1]; \
	TO *y = o_; \
	const bin_aux *A = aux_; \
	(void)A; \
	if (s_[0] && s_[1]) { \
		for (int64_t i = 0; i < n; i++) { \
			TA a = ap[i], b = bp[i]; \
			(void)b; \
			y[i] = (TO)(EXPR); \
		} \
	} else if (s_[1] == 0) { \
		TA b = bp[0]; \
		int64_t sa = s_[0]; \
		(void)b; \
		for (int64_t i = 0; i < n; i++) { \
			TA a = ap[i * sa]; \
			y[i] = (TO)(EXPR); \
		} \
	} else { \
		TA a = ap[0]; \
		for (int64_t i = 0; i < n; i++) { \
			TA b = bp[i]; \
			(void)b; \
			y[i] = (TO)(EXPR); \
		} \
	} \
}

typedef struct bin_impl { int32_t dt; rt_inner_fn fn; } bin_impl;

static int binary(kiln_frame *f, const char *loc, const char *op, const rt_t *a, const rt_t *b,
                  rt_t *out, const bin_impl *impl, const bin_aux *aux)
{
	if (a->dtype != b->dtype)
		return rt_error(f, "node '%s' (%s): input dtypes %s and %s differ", loc, op,
		                rt_dtype_name(a->dtype), rt_dtype_name(b->dtype));
	for (; impl->fn; impl++)
		if (impl->dt == a->dtype) {
			const rt_t *ins[2] = { a, b };
			return rt_elementwise(f, loc, op, ins, 2, out, impl->fn, aux);
		}
	return rt_bad_dtype(f, loc, op, a->dtype);
}

/* EF for floats, EI for integers (given as unsigned 64-bit arithmetic so
 * that overflow wraps instead of being UB) */
/* f16 rows: computed in float */
#define BIN_FN_F16(NAME, TO, EXPR, STORE) \
static void NAME(const void *const *p_, const int64_t *s_, void *o_, int64_t n, \
                 const void *aux_) \
{ \
	const uint16_t *ap = p_[0], *bp = p_[1]; \
	TO *y = o_; \
	(void)aux_; \
	for (int64_t i = 0; i < n; i++) { \
		float a = rt_f16_to_f32(ap[i * s_[0]]), b = rt_f16_to_f32(bp[i * s_[1]]); \
		(void)b; \
		y[i] = STORE(EXPR); \
	} \
}
#define TO_F16(v) rt_f32_to_f16((float)(v))
#define TO_BOOL(v) ((uint8_t)(v))

#define ARITH(Name, EF, EI) \
	BIN_FN(Name##_f32, float, float, EF) \
	BIN_FN(Name##_f64, double, double, EF) \
	BIN_FN_F16(Name##_f16, uint16_t, EF, TO_F16) \
	BIN_FN(Name##_i64, int64_t, int64_t, EI) \
	BIN_FN(Name##_i32, int32_t, int32_t, EI) \
	BIN_FN(Name##_i16, int16_t, int16_t, EI) \
	BIN_FN(Name##_i8, int8_t, int8_t, EI) \
	BIN_FN(Name##_u8, uint8_t, uint8_t, EI) \
	BIN_FN(Name##_u16, uint16_t, uint16_t, EI) \
	BIN_FN(Name##_u32, uint32_t, uint32_t, EI) \
	BIN_FN(Name##_u64, uint64_t, uint64_t, EI) \
	static const bin_impl Name##_impl[] = { \
		{ KILN_F32, Name##_f32 }, { KILN_F64, Name##_f64 }, { KILN_F16, Name##_f16 }, \
		{ KILN_I64, Name##_i64 }, { KILN_I32, Name##_i32 }, { KILN_I16, Name##_i16 }, \
		{ KILN_I8, Name##_i8 }, { KILN_U8, Name##_u8 }, { KILN_U16, Name##_u16 }, \
		{ KILN_U32, Name##_u32 }, { KILN_U64, Name##_u64 }, { 0, NULL } };

#define CMP(Name, E) \
	BIN_FN(Name##_f32, float, uint8_t, E) \
	BIN_FN(Name##_f64, double, uint8_t, E) \
	BIN_FN_F16(Name##_f16, uint8_t, E, TO_BOOL) \
	BIN_FN(Name##_i64, int64_t, uint8_t, E) \
	BIN_FN(Name##_i32, int32_t, uint8_t, E) \
	BIN_FN(Name##_i16, int16_t, uint8_t, E) \
	BIN_FN(Name##_i8, int8_t, uint8_t, E) \
	BIN_FN(Name##_u8, uint8_t, uint8_t, E) \
	BIN_FN(Name##_u16, uint16_t, uint8_t, E) \
	BIN_FN(Name##_u32, uint32_t, uint8_t, E) \
	BIN_FN(Name##_u64, uint64_t, uint8_t, E) \
	static const bin_impl Name##_impl[] = { \
		{ KILN_F32, Name##_f32 }, { KILN_F64, Name##_f64 }, { KILN_F16, Name##_f16 }, \
		{ KILN_I64, Name##_i64 }, { KILN_I32, Name##_i32 }, { KILN_I16, Name##_i16 }, \
		{ KILN_I8, Name##_i8 }, { KILN_U8, Name##_u8 }, { KILN_U16, Name##_u16 }, \
		{ KILN_U32, Name##_u32 }, { KILN_U64, Name##_u64 }, { KILN_BOOL, Name##_u8 }, \
		{ 0, NULL } };

#define U(x) ((uint64_t)(x))

/* integer division and modulo without traps: x/0 -> 0, MIN/-1 wraps */
static inline int64_t idiv(int64_t a, int64_t b)
{
	return b == 0 ? 0 : b == -1 ? (int64_t)(0 - U(a)) : a / b;
}

static inline int64_t irem(int64_t a, int64_t b)
{
	return b == 0 || b == -1 ? 0 : a % b;
}

/* fmod = 0: the result takes the sign of the divisor (Python) */
static inline int64_t imod(int64_t a, int64_t b)
{
	int64_t r = irem(a, b);
	return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
}

static inline double fmod_floor(double a, double b)
{
	double r = fmod(a, b);
	return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
}

ARITH(Add, a + b, U(a) + U(b))
ARITH(Sub, a - b, U(a) - U(b))
ARITH(Mul, a * b, U(a) * U(b))
ARITH(Div, a / b, idiv(a, b))
ARITH(Max, (a > b || a != a) ? a : b, a > b ? a : b)
ARITH(Min, (a < b || a != a) ? a : b, a < b ? a : b)
BIN_FN(Fmod_f32, float, float, fmodf(a, b))
BIN_FN(Fmod_f64, double, double, fmod(a, b))
ARITH(Mod, fmod_floor(a, b), imod(a, b))
ARITH(IMod, fmod(a, b), irem(a, b))   /* fmod = 1 (C semantics) */

CMP(Equal, a == b)
CMP(Less, a < b)
CMP(LessOrEqual, a <= b)
CMP(Greater, a > b)
CMP(GreaterOrEqual, a >= b)
BIN_FN(And_b, uint8_t, uint8_t, (a != 0) & (b != 0))
BIN_FN(Or_b, uint8_t, uint8_t, (a != 0) | (b != 0))
BIN_FN(Xor_b, uint8_t, uint8_t, (a != 0) ^ (b != 0))
static const bin_impl And_impl[] = { { KILN_BOOL, And_b }, { 0, NULL } };
static const bin_impl Or_impl[] = { { KILN_BOOL, Or_b }, { 0, NULL } };
static const bin_impl Xor_impl[] = { { KILN_BOOL, Xor_b }, { 0, NULL } };

#define BINARY_KERNEL(Name) \
	RT_KERNEL(Name) \
	{ \
		bin_aux a = {0}; \
		return binary(f, loc, #Name, &in[0], &in[1], &out[0], Name##_impl, &a); \
	}

BINARY_KERNEL(Add)
BINARY_KERNEL(Sub)
BINARY_KERNEL(Mul)
BINARY_KERNEL(Div)
BINARY_KERNEL(Equal)
BINARY_KERNEL(Less)
BINARY_KERNEL(LessOrEqual)
BINARY_KERNEL(Greater)
BINARY_KERNEL(GreaterOrEqual)
BINARY_KERNEL(And)
BINARY_KERNEL(Or)
BINARY_KERNEL(Xor)

RT_KERNEL(Mod)
{
	bin_aux a = {0};
	bool fm = nia > 0 && ia[0];
	if (fm && in[0].dtype == KILN_F32) {
		static const bin_impl impl[] = { { KILN_F32, Fmod_f32 }, { 0, NULL } };
		return binary(f, loc, "Mod", &in[0], &in[1], &out[0], impl, &a);
	}
	if (fm && in[0].dtype == KILN_F64) {
		static const bin_impl impl[] = { { KILN_F64, Fmod_f64 }, { 0, NULL } };
		return binary(f, loc, "Mod", &in[0], &in[1], &out[0], impl, &a);
	}
	return binary(f, loc, "Mod", &in[0], &in[1], &out[0], fm ? IMod_impl : Mod_impl, &a);
}

/* ---- Pow: base and exponent may differ in dtype; out has the base's ---- */

BIN_FN(Pow_f32, float, float, powf(a, b))
BIN_FN(Sq_f32, float, float, a * a)
BIN_FN(Cube_f32, float, float, a * a * a)
BIN_FN(Sqrt_f32, float, float, sqrtf(a))

static void pow_any(const void *const *p, const int64_t *s, void *o, int64_t n, const void *aux)
{
	const bin_aux *A = aux;
	for (int64_t i = 0; i < n; i++) {
		double a = rt_get_f64(p[0], A->adt, i * s[0]);
		double b = rt_get_f64(p[1], A->bdt, i * s[1]);
		rt_set_f64(o, A->odt, i, pow(a, b));
	}
}

RT_KERNEL(Pow)
{
	bin_aux a = { .adt = in[0].dtype, .bdt = in[1].dtype, .odt = out[0].dtype };
	if (!rt_dtype_size(a.adt) || !rt_dtype_size(a.bdt) || a.adt == KILN_BOOL || a.odt != a.adt)
		return rt_bad_dtype(f, loc, "Pow", a.adt);
	rt_inner_fn fn = pow_any;
	if (a.adt == KILN_F32 && a.bdt == KILN_F32) {
		fn = Pow_f32;
		if (rt_numel(&in[1]) == 1) {
			float e = *(const float *)in[1].data;
			fn = e == 2.0f ? Sq_f32 : e == 3.0f ? Cube_f32 : e == 0.5f ? Sqrt_f32 : Pow_f32;
		}
	}
	const rt_t *ins[2] = { &in[0], &in[1] };
	return rt_elementwise(f, loc, "Pow", ins, 2, &out[0], fn, &a);
}

/* ---- variadic: Max Min Sum Mean ---- */

static void copy_inner(const void *const *p, const int64_t *s, void *o, int64_t n, const void *aux)
{
	size_t esz = *(const size_t *)aux;
	const char *x = p[0];
	char *y = o;
	for (int64_t i = 0; i < n; i++)
		for (size_t b = 0; b < esz; b++)
			y[i * (int64_t)esz + (int64_t)b] = x[i * s[0] * (int64_t)esz + (int64_t)b];
}

static int variadic(kiln_frame *f, const char *loc, const char *op, const rt_t *in, int32_t nin,
                    rt_t *out, const bin_impl *impl)
{
	bin_aux a = {0};
	if (nin < 1)
		return rt_error(f, "node '%s' (%s): no inputs", loc, op);
	for (int k = 0; k < nin; k++)
		if (in[k].dtype != out->dtype)
			return rt_error(f, "node '%s' (%s): input %d dtype %s, output %s", loc, op, k,
			                rt_dtype_name(in[k].dtype), rt_dtype_name(out->dtype));
	if (nin == 1) {
		size_t esz = rt_dtype_size(out->dtype);
		const rt_t *ins[1] = { &in[0] };
		return rt_elementwise(f, loc, op, ins, 1, out, copy_inner, &esz);
	}
	if (binary(f, loc, op, &in[0], &in[1], out, impl, &a))
		return 1;
	for (int k = 2; k < nin; k++)    /* accumulate in place: out = op(out, in[k]) */
		if (binary(f, loc, op, out, &in[k], out, impl, &a))
			return 1;
	return 0;
}

RT_KERNEL(Max) { return variadic(f, loc, "Max", in, nin, &out[0], Max_impl); }
RT_KERNEL(Min) { return variadic(f, loc, "Min", in, nin, &out[0], Min_impl); }
RT_KERNEL(Sum) { return variadic(f, loc, "Sum", in, nin, &out[0], Add_impl); }

RT_KERNEL(Mean)
{
	if (out[0].dtype != KILN_F32 && out[0].dtype != KILN_F64)
		return rt_bad_dtype(f, loc, "Mean", out[0].dtype);
	if (variadic(f, loc, "Mean", in, nin, &out[0], Add_impl))
		return 1;
	int64_t n = rt_numel(&out[0]);
	if (out[0].dtype == KILN_F32) {
		float *y = out[0].data, s = 1.0f / (float)nin;
		for (int64_t i = 0; i < n; i++)
			y[i] *= s;
	} else {
		double *y = out[0].data;
		for (int64_t i = 0; i < n; i++)
			y[i] /= nin;
	}
	return 0;
}

/* ---- Where ---- */

#define WHERE_FN(NAME, T) \
static void NAME(const void *const *p, const int64_t *s, void *o, int64_t n, const void *aux) \
{ \
	const uint8_t *c = p[0]; \
	const T *x = p[1], *y = p[2]; \
	T *z = o; \
	for (int64_t i = 0; i < n; i++) \
		z[i] = c[i * s[0]] ? x[i * s[1]] : y[i * s[2]]; \
}
WHERE_FN(where8, uint8_t)
WHERE_FN(where16, uint16_t)
WHERE_FN(where32, uint32_t)
WHERE_FN(where64, uint64_t)

RT_KERNEL(Where)
{
	if (in[0].dtype != KILN_BOOL)
		return rt_error(f, "node '%s' (Where): condition dtype %s, expected bool", loc,
		                rt_dtype_name(in[0].dtype));
	if (in[1].dtype != in[2].dtype || in[1].dtype != out[0].dtype)
		return rt_error(f, "node '%s' (Where): X %s, Y %s, output %s differ", loc,
		                rt_dtype_name(in[1].dtype), rt_dtype_name(in[2].dtype),
		                rt_dtype_name(out[0].dtype));
	rt_inner_fn fn;
	switch (rt_dtype_size(out[0].dtype)) {
	case 1: fn = where8; break;
	case 2: fn = where16; break;
	case 4: fn = where32; break;
	case 8: fn = where64; break;
	default: return rt_bad_dtype(f, loc, "Where", out[0].dtype);
	}
	const rt_t *ins[3] = { &in[0], &in[1], &in[2] };
	return rt_elementwise(f, loc, "Where", ins, 3, &out[0], fn, NULL);
}

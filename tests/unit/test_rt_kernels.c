/* test_rt_kernels.c: runtime kernels called directly with a kiln_frame
 * (two-thread pool), checked against values computed by hand or by naive
 * loops here, and the one-line errors for bad inputs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rt_internal.h"

RT_KERNEL(Add); RT_KERNEL(Sub); RT_KERNEL(Div); RT_KERNEL(Mod); RT_KERNEL(Pow);
RT_KERNEL(Equal); RT_KERNEL(Max); RT_KERNEL(Mean); RT_KERNEL(Where);
RT_KERNEL(Relu); RT_KERNEL(Gelu); RT_KERNEL(Cast); RT_KERNEL(Clip); RT_KERNEL(IsInf);
RT_KERNEL(Round); RT_KERNEL(Neg);
RT_KERNEL(ReduceSum); RT_KERNEL(ReduceMean); RT_KERNEL(ReduceMax); RT_KERNEL(ArgMax);
RT_KERNEL(CumSum); RT_KERNEL(Softmax); RT_KERNEL(LogSoftmax); RT_KERNEL(LayerNormalization);
RT_KERNEL(MatMul); RT_KERNEL(Gemm); RT_KERNEL(Einsum);
RT_KERNEL(Shape); RT_KERNEL(Transpose); RT_KERNEL(Expand); RT_KERNEL(Concat); RT_KERNEL(Split);
RT_KERNEL(Slice); RT_KERNEL(Tile); RT_KERNEL(Range); RT_KERNEL(ConstantOfShape);
RT_KERNEL(EyeLike); RT_KERNEL(Trilu);
RT_KERNEL(Gather); RT_KERNEL(GatherElements); RT_KERNEL(GatherND); RT_KERNEL(OneHot);

static struct kiln_context ctx;
static kiln_frame F;

static int setup(void **state)
{
	(void)state;
	memset(&ctx, 0, sizeof ctx);
	ctx.pool = rt_pool_create(2);
	F = (kiln_frame){ .pool = ctx.pool, .ctx = &ctx };
	return ctx.pool ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	rt_pool_free(ctx.pool);
	return 0;
}

/* tensor with up to 4 dims, -1 terminated */
static rt_t T(int32_t dt, void *data, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
	rt_t t = { .data = data, .dtype = dt };
	int64_t d[4] = { d0, d1, d2, d3 };
	for (int k = 0; k < 4 && d[k] >= 0; k++)
		t.dims[t.rank++] = d[k];
	return t;
}
#define N_ -1

static void assert_close(const float *got, const float *want, int64_t n, float tol)
{
	for (int64_t i = 0; i < n; i++)
		if (fabsf(got[i] - want[i]) > tol * (1 + fabsf(want[i]))) {
			print_error("at %lld: got %g, want %g\n", (long long)i, got[i], want[i]);
			fail();
		}
}

static float frand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* ---- elementwise ---- */

static void test_add_broadcast(void **state)
{
	(void)state;
	float a[24], b[3] = { 10, 20, 30 }, y[24];
	for (int i = 0; i < 24; i++)
		a[i] = (float)i;
	rt_t in[2] = { T(KILN_F32, a, 2, 3, 4, N_), T(KILN_F32, b, 3, 1, N_, N_) };
	rt_t out = T(KILN_F32, y, 2, 3, 4, N_);
	assert_int_equal(rt_op_Add(&F, "n", in, 2, &out, 1, NULL, 0, NULL, 0), 0);
	for (int i = 0; i < 24; i++)
		assert_true(y[i] == (float)i + b[(i / 4) % 3]);

	/* a contradicting dim is an error naming the node */
	rt_t bad[2] = { T(KILN_F32, a, 2, 3, N_, N_), T(KILN_F32, b, 4, N_, N_, N_) };
	rt_t out2 = T(KILN_F32, y, 2, 3, N_, N_);
	assert_int_not_equal(rt_op_Add(&F, "add_1", bad, 2, &out2, 1, NULL, 0, NULL, 0), 0);
	assert_string_equal(ctx.err, "node 'add_1' (Add): input 1 dim 0 is 4, output 3");
}

static void test_add_large_parallel(void **state)
{
	(void)state;
	int64_t R = 1024, C = 1000;
	float *a = malloc(sizeof(float) * (size_t)(R * C)), *y = malloc(sizeof(float) * (size_t)(R * C));
	float *b = malloc(sizeof(float) * (size_t)C);
	for (int64_t i = 0; i < R * C; i++)
		a[i] = (float)(i % 977);
	for (int64_t j = 0; j < C; j++)
		b[j] = (float)j * 0.5f;
	rt_t in[2] = { T(KILN_F32, a, R, C, N_, N_), T(KILN_F32, b, C, N_, N_, N_) };
	rt_t out = T(KILN_F32, y, R, C, N_, N_);
	assert_int_equal(rt_op_Add(&F, "n", in, 2, &out, 1, NULL, 0, NULL, 0), 0);
	for (int64_t i = 0; i < R * C; i++)
		if (y[i] != (float)(i % 977) + (float)(i % C) * 0.5f)
			fail_msg("at %lld", (long long)i);
	free(a); free(b); free(y);
}

static void test_int_arith(void **state)
{
	(void)state;
	int64_t a[4] = { 7, -7, 7, -7 }, b[4] = { 2, 2, -2, 0 }, y[4];
	rt_t in[2] = { T(KILN_I64, a, 4, N_, N_, N_), T(KILN_I64, b, 4, N_, N_, N_) };
	rt_t out = T(KILN_I64, y, 4, N_, N_, N_);
	assert_int_equal(rt_op_Div(&F, "d", in, 2, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(y[0] == 3 && y[1] == -3 && y[2] == -3 && y[3] == 0);   /* trunc; /0 -> 0 */
	int64_t fm0 = 0, fm1 = 1;
	assert_int_equal(rt_op_Mod(&F, "m", in, 2, &out, 1, &fm0, 1, NULL, 0), 0);
	assert_true(y[0] == 1 && y[1] == 1 && y[2] == -1);                  /* sign of divisor */
	assert_int_equal(rt_op_Mod(&F, "m", in, 2, &out, 1, &fm1, 1, NULL, 0), 0);
	assert_true(y[0] == 1 && y[1] == -1 && y[2] == 1);                  /* sign of dividend */

	uint8_t eq[4];
	rt_t oeq = T(KILN_BOOL, eq, 4, N_, N_, N_);
	rt_t in2[2] = { T(KILN_I64, a, 4, N_, N_, N_), T(KILN_I64, b, 1, N_, N_, N_) };
	int64_t two = -7;
	in2[1].data = &two;
	assert_int_equal(rt_op_Equal(&F, "e", in2, 2, &oeq, 1, NULL, 0, NULL, 0), 0);
	assert_true(!eq[0] && eq[1] && !eq[2] && eq[3]);

	/* dtype mismatch is an error */
	rt_t mix[2] = { T(KILN_I64, a, 4, N_, N_, N_), T(KILN_F32, b, 4, N_, N_, N_) };
	assert_int_not_equal(rt_op_Div(&F, "d", mix, 2, &out, 1, NULL, 0, NULL, 0), 0);
	assert_non_null(strstr(ctx.err, "node 'd' (Div)"));
}

static void test_pow_variadic(void **state)
{
	(void)state;
	float x[3] = { 1, 2, 3 }, e = 2, y[3];
	rt_t in[2] = { T(KILN_F32, x, 3, N_, N_, N_), T(KILN_F32, &e, N_, N_, N_, N_) };
	rt_t out = T(KILN_F32, y, 3, N_, N_, N_);
	assert_int_equal(rt_op_Pow(&F, "p", in, 2, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(y[0] == 1 && y[1] == 4 && y[2] == 9);
	e = 1.5f;
	assert_int_equal(rt_op_Pow(&F, "p", in, 2, &out, 1, NULL, 0, NULL, 0), 0);
	assert_float_equal(y[2], powf(3, 1.5f), 1e-5);

	float a[3] = { 1, 5, 2 }, b[1] = { 3 }, c[3] = { 0, 0, 9 };
	rt_t vin[3] = { T(KILN_F32, a, 3, N_, N_, N_), T(KILN_F32, b, 1, N_, N_, N_),
	                T(KILN_F32, c, 3, N_, N_, N_) };
	assert_int_equal(rt_op_Max(&F, "mx", vin, 3, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(y[0] == 3 && y[1] == 5 && y[2] == 9);
	assert_int_equal(rt_op_Mean(&F, "mn", vin, 3, &out, 1, NULL, 0, NULL, 0), 0);
	assert_float_equal(y[0], 4.0f / 3, 1e-6);
	assert_float_equal(y[2], 14.0f / 3, 1e-6);
}

static void test_more_dtypes(void **state)
{
	(void)state;
	int16_t a[3] = { -5, 7, 300 }, b[3] = { 3, -2, 301 }, y[3];
	rt_t in[2] = { T(KILN_I16, a, 3, N_, N_, N_), T(KILN_I16, b, 3, N_, N_, N_) };
	rt_t out = T(KILN_I16, y, 3, N_, N_, N_);
	assert_int_equal(rt_op_Max(&F, "m", in, 2, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(y[0] == 3 && y[1] == 7 && y[2] == 301);
	int64_t fm0 = 0;
	assert_int_equal(rt_op_Mod(&F, "m", in, 2, &out, 1, &fm0, 1, NULL, 0), 0);
	assert_true(y[0] == 1 && y[1] == -1 && y[2] == 300);

	uint64_t ua[2] = { UINT64_MAX, 3 }, ub[2] = { 1, 9 }, uy[2];
	rt_t uin[2] = { T(KILN_U64, ua, 2, N_, N_, N_), T(KILN_U64, ub, 2, N_, N_, N_) };
	rt_t uout = T(KILN_U64, uy, 2, N_, N_, N_);
	assert_int_equal(rt_op_Max(&F, "m", uin, 2, &uout, 1, NULL, 0, NULL, 0), 0);
	assert_true(uy[0] == UINT64_MAX && uy[1] == 9);

	uint16_t h[2] = { 0x3c00, 0x4000 }, hy[2];           /* f16 1, 2 */
	uint16_t hb[1] = { 0x3800 };                         /* 0.5 */
	rt_t hin[2] = { T(KILN_F16, h, 2, N_, N_, N_), T(KILN_F16, hb, 1, N_, N_, N_) };
	rt_t hout = T(KILN_F16, hy, 2, N_, N_, N_);
	assert_int_equal(rt_op_Add(&F, "a", hin, 2, &hout, 1, NULL, 0, NULL, 0), 0);
	assert_true(hy[0] == 0x3e00 && hy[1] == 0x4100);     /* 1.5, 2.5 */

	float fx[3] = { 1.0f, -3.140625f, NAN }, fb[3];
	uint16_t bf[3];
	rt_t cin = T(KILN_F32, fx, 3, N_, N_, N_), cout = T(KILN_BF16, bf, 3, N_, N_, N_);
	assert_int_equal(rt_op_Cast(&F, "c", &cin, 1, &cout, 1, NULL, 0, NULL, 0), 0);
	assert_true(bf[0] == 0x3f80 && bf[1] == 0xc049);
	cin = T(KILN_BF16, bf, 3, N_, N_, N_);
	cout = T(KILN_F32, fb, 3, N_, N_, N_);
	assert_int_equal(rt_op_Cast(&F, "c", &cin, 1, &cout, 1, NULL, 0, NULL, 0), 0);
	assert_true(fb[0] == 1.0f && fb[1] == -3.140625f && isnan(fb[2]));
}

static void test_where(void **state)
{
	(void)state;
	uint8_t c[2] = { 1, 0 };
	int64_t x[3] = { 1, 2, 3 }, yv = -1, z[6];
	rt_t in[3] = { T(KILN_BOOL, c, 2, 1, N_, N_), T(KILN_I64, x, 1, 3, N_, N_),
	               T(KILN_I64, &yv, N_, N_, N_, N_) };
	rt_t out = T(KILN_I64, z, 2, 3, N_, N_);
	assert_int_equal(rt_op_Where(&F, "w", in, 3, &out, 1, NULL, 0, NULL, 0), 0);
	int64_t want[6] = { 1, 2, 3, -1, -1, -1 };
	assert_memory_equal(z, want, sizeof want);
}

static void test_unary(void **state)
{
	(void)state;
	float x[6] = { -2, -0.5f, 0, 0.5f, 2.5f, 3.5f }, y[6];
	rt_t in = T(KILN_F32, x, 6, N_, N_, N_), out = T(KILN_F32, y, 6, N_, N_, N_);
	assert_int_equal(rt_op_Relu(&F, "r", &in, 1, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(y[0] == 0 && y[1] == 0 && y[4] == 2.5f);
	assert_int_equal(rt_op_Round(&F, "r", &in, 1, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(y[1] == 0 && y[3] == 0 && y[4] == 2 && y[5] == 4);    /* half to even */
	int64_t approx = 0;
	assert_int_equal(rt_op_Gelu(&F, "g", &in, 1, &out, 1, &approx, 1, NULL, 0), 0);
	assert_float_equal(y[4], 0.5 * 2.5 * (1 + erf(2.5 / sqrt(2))), 1e-5);
	float lo = 0, hi = 1;
	rt_t cin[3] = { in, T(KILN_F32, &lo, N_, N_, N_, N_), T(KILN_F32, &hi, N_, N_, N_, N_) };
	cin[1].data = NULL;                                   /* absent min */
	assert_int_equal(rt_op_Clip(&F, "c", cin, 3, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(y[0] == -2 && y[3] == 0.5f && y[5] == 1);

	float inf[3] = { INFINITY, -INFINITY, 1 };
	uint8_t b[3];
	rt_t iin = T(KILN_F32, inf, 3, N_, N_, N_), bout = T(KILN_BOOL, b, 3, N_, N_, N_);
	int64_t pos_only[2] = { 0, 1 };
	assert_int_equal(rt_op_IsInf(&F, "i", &iin, 1, &bout, 1, pos_only, 2, NULL, 0), 0);
	assert_true(b[0] == 1 && b[1] == 0 && b[2] == 0);

	int32_t mn[2] = { INT32_MIN, 5 }, nmn[2];
	rt_t nin = T(KILN_I32, mn, 2, N_, N_, N_), nout = T(KILN_I32, nmn, 2, N_, N_, N_);
	assert_int_equal(rt_op_Neg(&F, "n", &nin, 1, &nout, 1, NULL, 0, NULL, 0), 0);
	assert_true(nmn[1] == -5);
}

static void test_cast(void **state)
{
	(void)state;
	float x[5] = { -1.7f, 2.9f, 0, 3e10f, NAN };
	int32_t i[5];
	rt_t in = T(KILN_F32, x, 5, N_, N_, N_), out = T(KILN_I32, i, 5, N_, N_, N_);
	assert_int_equal(rt_op_Cast(&F, "c", &in, 1, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(i[0] == -1 && i[1] == 2 && i[2] == 0 && i[3] == INT32_MAX);
	uint8_t b[5];
	out = T(KILN_BOOL, b, 5, N_, N_, N_);
	assert_int_equal(rt_op_Cast(&F, "c", &in, 1, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(b[0] == 1 && b[2] == 0 && b[4] == 1);
	int64_t l[3] = { -3, 1LL << 40, 7 };
	float lf[3];
	in = T(KILN_I64, l, 3, N_, N_, N_);
	out = T(KILN_F32, lf, 3, N_, N_, N_);
	assert_int_equal(rt_op_Cast(&F, "c", &in, 1, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(lf[0] == -3 && lf[1] == 1099511627776.0f);
	int8_t i8[3];                                        /* i64 -> i8 wraps */
	out = T(KILN_I8, i8, 3, N_, N_, N_);
	l[2] = 300;
	assert_int_equal(rt_op_Cast(&F, "c", &in, 1, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(i8[0] == -3 && i8[2] == 44);
	float hx[4] = { 1.0f, -2.5f, 65504.0f, 1e-7f }, back[4];
	uint16_t h[4];
	in = T(KILN_F32, hx, 4, N_, N_, N_);
	out = T(KILN_F16, h, 4, N_, N_, N_);
	assert_int_equal(rt_op_Cast(&F, "c", &in, 1, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(h[0] == 0x3c00 && h[1] == 0xc100 && h[2] == 0x7bff);
	in = T(KILN_F16, h, 4, N_, N_, N_);
	out = T(KILN_F32, back, 4, N_, N_, N_);
	assert_int_equal(rt_op_Cast(&F, "c", &in, 1, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(back[0] == 1 && back[1] == -2.5f && back[2] == 65504.0f);
	assert_float_equal(back[3], 1e-7, 3e-8);
}

/* ---- reductions ---- */

static void test_reduce(void **state)
{
	(void)state;
	float x[24], y[24];
	for (int i = 0; i < 24; i++)
		x[i] = (float)i;
	rt_t in = T(KILN_F32, x, 2, 3, 4, N_);
	rt_t out = T(KILN_F32, y, 2, 1, 4, N_);
	int64_t a1[3] = { 1, 1, 1 };                         /* keepdims, axes [1] */
	assert_int_equal(rt_op_ReduceSum(&F, "r", &in, 1, &out, 1, a1, 3, NULL, 0), 0);
	for (int b = 0; b < 2; b++)
		for (int k = 0; k < 4; k++)
			assert_true(y[b * 4 + k] == x[b * 12 + k] + x[b * 12 + 4 + k] + x[b * 12 + 8 + k]);
	int64_t a02[4] = { 0, 2, 0, 2 };                     /* axes [0, 2], no keepdims */
	out = T(KILN_F32, y, 3, N_, N_, N_);
	assert_int_equal(rt_op_ReduceMean(&F, "r", &in, 1, &out, 1, a02, 4, NULL, 0), 0);
	for (int j = 0; j < 3; j++) {
		float s = 0;
		for (int b = 0; b < 2; b++)
			for (int k = 0; k < 4; k++)
				s += x[b * 12 + j * 4 + k];
		assert_float_equal(y[j], s / 8, 1e-5);
	}
	int64_t all[5] = { 1, 3, 0, 1, 2 };
	out = T(KILN_F32, y, 1, 1, 1, N_);
	assert_int_equal(rt_op_ReduceMax(&F, "r", &in, 1, &out, 1, all, 5, NULL, 0), 0);
	assert_true(y[0] == 23);
	int64_t am[3] = { 2, 0, 0 }, idx[6];
	float z[6] = { 1, 5, 5, 0, -1, -2 };
	in = T(KILN_F32, z, 2, 3, N_, N_);
	rt_t iout = T(KILN_I64, idx, 2, N_, N_, N_);
	am[0] = 1;
	assert_int_equal(rt_op_ArgMax(&F, "a", &in, 1, &iout, 1, am, 3, NULL, 0), 0);
	assert_true(idx[0] == 1 && idx[1] == 0);
	am[2] = 1;                                           /* select_last_index */
	assert_int_equal(rt_op_ArgMax(&F, "a", &in, 1, &iout, 1, am, 3, NULL, 0), 0);
	assert_true(idx[0] == 2);

	int32_t ax = -1;
	float cs[6];
	rt_t cin[2] = { T(KILN_F32, z, 2, 3, N_, N_), T(KILN_I32, &ax, N_, N_, N_, N_) };
	out = T(KILN_F32, cs, 2, 3, N_, N_);
	int64_t excl_rev[2] = { 1, 1 };
	assert_int_equal(rt_op_CumSum(&F, "c", cin, 2, &out, 1, excl_rev, 2, NULL, 0), 0);
	float want[6] = { 10, 5, 0, -3, -2, 0 };
	assert_close(cs, want, 6, 0);
}

static void test_softmax(void **state)
{
	(void)state;
	float x[6] = { 1, 2, 3, -1, 0, 1000 }, y[6];
	rt_t in = T(KILN_F32, x, 2, 3, N_, N_), out = T(KILN_F32, y, 2, 3, N_, N_);
	int64_t axis = 1;
	assert_int_equal(rt_op_Softmax(&F, "s", &in, 1, &out, 1, &axis, 1, NULL, 0), 0);
	float e = expf(1) + expf(2) + expf(3);
	float want[6] = { expf(1) / e, expf(2) / e, expf(3) / e, 0, 0, 1 };
	assert_close(y, want, 6, 1e-6f);
	axis = 0;                                            /* strided axis */
	assert_int_equal(rt_op_Softmax(&F, "s", &in, 1, &out, 1, &axis, 1, NULL, 0), 0);
	assert_float_equal(y[0], expf(1) / (expf(1) + expf(-1)), 1e-6);
	assert_float_equal(y[0] + y[3], 1, 1e-6);
	axis = 1;
	assert_int_equal(rt_op_LogSoftmax(&F, "s", &in, 1, &out, 1, &axis, 1, NULL, 0), 0);
	assert_float_equal(y[2], 3 - logf(e), 1e-5);
	assert_float_equal(y[5], 0, 1e-5);
}

static void test_layernorm(void **state)
{
	(void)state;
	float x[8] = { 1, 2, 3, 4, -1, 0, 0, 5 }, g[4] = { 1, 2, 1, 1 }, b[4] = { 0, 0, 1, 0 };
	float y[8], mean[2], inv[2];
	rt_t in[3] = { T(KILN_F32, x, 2, 4, N_, N_), T(KILN_F32, g, 4, N_, N_, N_),
	               T(KILN_F32, b, 4, N_, N_, N_) };
	rt_t out[3] = { T(KILN_F32, y, 2, 4, N_, N_), T(KILN_F32, mean, 2, 1, N_, N_),
	                T(KILN_F32, inv, 2, 1, N_, N_) };
	int64_t axis = 1;
	float eps = 1e-5f;
	assert_int_equal(rt_op_LayerNormalization(&F, "ln", in, 3, out, 3, &axis, 1, &eps, 1), 0);
	for (int r = 0; r < 2; r++) {
		float m = 0, v = 0;
		for (int k = 0; k < 4; k++)
			m += x[r * 4 + k] / 4;
		for (int k = 0; k < 4; k++)
			v += (x[r * 4 + k] - m) * (x[r * 4 + k] - m) / 4;
		assert_float_equal(mean[r], m, 1e-6);
		assert_float_equal(inv[r], 1 / sqrtf(v + eps), 1e-5);
		for (int k = 0; k < 4; k++)
			assert_float_equal(y[r * 4 + k], (x[r * 4 + k] - m) / sqrtf(v + eps) * g[k] + b[k], 1e-5);
	}
	in[2].data = NULL;                                   /* no bias, no extra outputs */
	assert_int_equal(rt_op_LayerNormalization(&F, "ln", in, 3, out, 1, &axis, 1, &eps, 1), 0);
	assert_float_equal(y[2], (3 - 2.5f) / sqrtf(1.25f + eps), 1e-5);
}

/* ---- linear algebra ---- */

static void naive_mm(const float *a, const float *b, float *c, int M, int N, int K)
{
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double s = 0;
			for (int k = 0; k < K; k++)
				s += (double)a[i * K + k] * b[k * N + j];
			c[i * N + j] = (float)s;
		}
}

static void test_matmul(void **state)
{
	(void)state;
	unsigned seed = 1;
	/* [2,1,3,4] x [3,4,5] -> [2,3,3,5] (batch broadcast both ways) */
	float a[24], b[60], c[90], want[90];
	for (int i = 0; i < 24; i++) a[i] = frand(&seed);
	for (int i = 0; i < 60; i++) b[i] = frand(&seed);
	rt_t in[2] = { (rt_t){ a, KILN_F32, 4, { 2, 1, 3, 4 } }, T(KILN_F32, b, 3, 4, 5, N_) };
	rt_t out = { c, KILN_F32, 4, { 2, 3, 3, 5 } };
	assert_int_equal(rt_op_MatMul(&F, "mm", in, 2, &out, 1, NULL, 0, NULL, 0), 0);
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 3; j++)
			naive_mm(a + i * 12, b + j * 20, want + (i * 3 + j) * 15, 3, 5, 4);
	assert_close(c, want, 90, 1e-5f);

	/* a tall folded product, big enough to run on both threads */
	int B = 4, S = 64, K = 96, N = 80;
	float *x = malloc(sizeof(float) * (size_t)(B * S * K)), *w = malloc(sizeof(float) * (size_t)(K * N));
	float *y = malloc(sizeof(float) * (size_t)(B * S * N)), *yw = malloc(sizeof(float) * (size_t)(B * S * N));
	for (int i = 0; i < B * S * K; i++) x[i] = frand(&seed);
	for (int i = 0; i < K * N; i++) w[i] = frand(&seed);
	rt_t in2[2] = { T(KILN_F32, x, B, S, K, N_), T(KILN_F32, w, K, N, N_, N_) };
	rt_t out2 = T(KILN_F32, y, B, S, N, N_);
	assert_int_equal(rt_op_MatMul(&F, "mm", in2, 2, &out2, 1, NULL, 0, NULL, 0), 0);
	naive_mm(x, w, yw, B * S, N, K);
	assert_close(y, yw, B * S * N, 1e-4f);
	/* batched both sides: [4,64,96] x [4,96,80] with 4 different B */
	float *w4 = malloc(sizeof(float) * (size_t)(B * K * N));
	for (int i = 0; i < B * K * N; i++) w4[i] = frand(&seed);
	in2[1] = T(KILN_F32, w4, B, K, N, N_);
	assert_int_equal(rt_op_MatMul(&F, "mm", in2, 2, &out2, 1, NULL, 0, NULL, 0), 0);
	for (int i = 0; i < B; i++)
		naive_mm(x + i * S * K, w4 + i * K * N, yw + i * S * N, S, N, K);
	assert_close(y, yw, B * S * N, 1e-4f);
	free(x); free(w); free(y); free(yw); free(w4);

	/* 1-D cases: [4] x [4,5] -> [5]; [3,4] x [4] -> [3] */
	float v[4] = { 1, 2, 3, 4 }, r5[5], r3[3], wv[5];
	rt_t in3[2] = { T(KILN_F32, v, 4, N_, N_, N_), T(KILN_F32, b, 4, 5, N_, N_) };
	rt_t out3 = T(KILN_F32, r5, 5, N_, N_, N_);
	assert_int_equal(rt_op_MatMul(&F, "mm", in3, 2, &out3, 1, NULL, 0, NULL, 0), 0);
	naive_mm(v, b, wv, 1, 5, 4);
	assert_close(r5, wv, 5, 1e-5f);
	rt_t in4[2] = { T(KILN_F32, a, 3, 4, N_, N_), T(KILN_F32, v, 4, N_, N_, N_) };
	out3 = T(KILN_F32, r3, 3, N_, N_, N_);
	assert_int_equal(rt_op_MatMul(&F, "mm", in4, 2, &out3, 1, NULL, 0, NULL, 0), 0);
	naive_mm(a, v, wv, 3, 1, 4);
	assert_close(r3, wv, 3, 1e-5f);

	/* i64 and a mismatch */
	int64_t ia[4] = { 1, 2, 3, 4 }, ib[4] = { 5, 6, 7, 8 }, ic[4];
	rt_t in5[2] = { T(KILN_I64, ia, 2, 2, N_, N_), T(KILN_I64, ib, 2, 2, N_, N_) };
	rt_t out5 = T(KILN_I64, ic, 2, 2, N_, N_);
	assert_int_equal(rt_op_MatMul(&F, "mm", in5, 2, &out5, 1, NULL, 0, NULL, 0), 0);
	assert_true(ic[0] == 19 && ic[1] == 22 && ic[2] == 43 && ic[3] == 50);
	in5[1] = T(KILN_I64, ib, 4, 1, N_, N_);
	assert_int_not_equal(rt_op_MatMul(&F, "mm2", in5, 2, &out5, 1, NULL, 0, NULL, 0), 0);
	assert_non_null(strstr(ctx.err, "node 'mm2' (MatMul)"));
}

static void test_gemm(void **state)
{
	(void)state;
	float a[6] = { 1, 2, 3, 4, 5, 6 }, b[6] = { 1, 0, 0, 1, 1, 1 }, c[2] = { 10, 20 }, y[4];
	/* A^T (2x3) * B (3x2) * 2 + 0.5 * C[2] */
	rt_t in[3] = { T(KILN_F32, a, 3, 2, N_, N_), T(KILN_F32, b, 3, 2, N_, N_),
	               T(KILN_F32, c, 2, N_, N_, N_) };
	rt_t out = T(KILN_F32, y, 2, 2, N_, N_);
	int64_t tr[2] = { 1, 0 };
	float ab[2] = { 2, 0.5f };
	assert_int_equal(rt_op_Gemm(&F, "g", in, 3, &out, 1, tr, 2, ab, 2), 0);
	/* A^T = [[1,3,5],[2,4,6]]; A^T B = [[6,8],[8,10]] */
	float want[4] = { 17, 26, 21, 30 };
	assert_close(y, want, 4, 1e-6f);
}

static void test_einsum(void **state)
{
	(void)state;
	unsigned seed = 7;
	float a[2 * 3 * 4], b[2 * 4 * 5], y[2 * 3 * 5], want[2 * 3 * 5];
	for (int i = 0; i < 24; i++) a[i] = frand(&seed);
	for (int i = 0; i < 40; i++) b[i] = frand(&seed);
	const char *eq = "bij,bjk->bik";
	int64_t ia[32];
	int n = (int)strlen(eq);
	for (int i = 0; i < n; i++)
		ia[i] = eq[i];
	rt_t in[2] = { T(KILN_F32, a, 2, 3, 4, N_), T(KILN_F32, b, 2, 4, 5, N_) };
	rt_t out = T(KILN_F32, y, 2, 3, 5, N_);
	assert_int_equal(rt_op_Einsum(&F, "e", in, 2, &out, 1, ia, n, NULL, 0), 0);
	for (int i = 0; i < 2; i++)
		naive_mm(a + i * 12, b + i * 20, want + i * 15, 3, 5, 4);
	assert_close(y, want, 30, 1e-5f);

	eq = "...ij,...jk";                                  /* implicit output, ellipsis */
	n = (int)strlen(eq);
	for (int i = 0; i < n; i++)
		ia[i] = eq[i];
	memset(y, 0, sizeof y);
	assert_int_equal(rt_op_Einsum(&F, "e", in, 2, &out, 1, ia, n, NULL, 0), 0);
	assert_close(y, want, 30, 1e-5f);

	float m[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, d[3];
	eq = "ii->i";
	n = (int)strlen(eq);
	for (int i = 0; i < n; i++)
		ia[i] = eq[i];
	rt_t min = T(KILN_F32, m, 3, 3, N_, N_), dout = T(KILN_F32, d, 3, N_, N_, N_);
	assert_int_equal(rt_op_Einsum(&F, "e", &min, 1, &dout, 1, ia, n, NULL, 0), 0);
	assert_true(d[0] == 1 && d[1] == 5 && d[2] == 9);
	eq = "ij,jk->ik";                                    /* wrong inner size */
	n = (int)strlen(eq);
	for (int i = 0; i < n; i++)
		ia[i] = eq[i];
	rt_t bad[2] = { T(KILN_F32, a, 3, 4, N_, N_), T(KILN_F32, b, 5, 4, N_, N_) };
	rt_t bout = T(KILN_F32, y, 3, 4, N_, N_);
	assert_int_not_equal(rt_op_Einsum(&F, "e", bad, 2, &bout, 1, ia, n, NULL, 0), 0);
	assert_non_null(strstr(ctx.err, "label 'j' is 4 and 5"));
}

/* ---- shape & layout ---- */

static void test_transpose_expand(void **state)
{
	(void)state;
	float x[24], y[24];
	for (int i = 0; i < 24; i++)
		x[i] = (float)i;
	rt_t in = T(KILN_F32, x, 2, 3, 4, N_), out = T(KILN_F32, y, 4, 2, 3, N_);
	int64_t perm[3] = { 2, 0, 1 };
	assert_int_equal(rt_op_Transpose(&F, "t", &in, 1, &out, 1, perm, 3, NULL, 0), 0);
	for (int k = 0; k < 4; k++)
		for (int i = 0; i < 2; i++)
			for (int j = 0; j < 3; j++)
				assert_true(y[(k * 2 + i) * 3 + j] == x[(i * 3 + j) * 4 + k]);

	float e[3] = { 1, 2, 3 };
	float z[24];
	rt_t ein = T(KILN_F32, e, 3, 1, N_, N_), eout = T(KILN_F32, z, 2, 3, 4, N_);
	assert_int_equal(rt_op_Expand(&F, "x", &ein, 1, &eout, 1, NULL, 0, NULL, 0), 0);
	for (int i = 0; i < 24; i++)
		assert_true(z[i] == e[(i / 4) % 3]);

	int64_t shp[2];
	rt_t sout = T(KILN_I64, shp, 2, N_, N_, N_);
	int64_t se[2] = { -2, 3 };
	se[0] = 1;
	assert_int_equal(rt_op_Shape(&F, "s", &in, 1, &sout, 1, se, 2, NULL, 0), 0);
	assert_true(shp[0] == 3 && shp[1] == 4);
}

static void test_slice(void **state)
{
	(void)state;
	int32_t x[5] = { 0, 1, 2, 3, 4 }, y[5];
	int64_t st = -1, en = INT64_MIN, ax = 0, sp = -2;
	rt_t in[5] = { T(KILN_I32, x, 5, N_, N_, N_), T(KILN_I64, &st, 1, N_, N_, N_),
	               T(KILN_I64, &en, 1, N_, N_, N_), T(KILN_I64, &ax, 1, N_, N_, N_),
	               T(KILN_I64, &sp, 1, N_, N_, N_) };
	rt_t out = T(KILN_I32, y, 3, N_, N_, N_);
	assert_int_equal(rt_op_Slice(&F, "s", in, 5, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(y[0] == 4 && y[1] == 2 && y[2] == 0);

	/* 2-D: x[3,4]; axes [-1]: cols 3..0 step -1, rows all; i32 params */
	float m[12], z[12];
	for (int i = 0; i < 12; i++)
		m[i] = (float)i;
	int32_t s2 = 10, e2 = -10, a2 = -1;
	rt_t in2[4] = { T(KILN_F32, m, 3, 4, N_, N_), T(KILN_I32, &s2, 1, N_, N_, N_),
	                T(KILN_I32, &e2, 1, N_, N_, N_), T(KILN_I32, &a2, 1, N_, N_, N_) };
	out = T(KILN_F32, z, 3, 0, N_, N_);                 /* step 1 from 10 to -10: empty */
	assert_int_equal(rt_op_Slice(&F, "s", in2, 4, &out, 1, NULL, 0, NULL, 0), 0);
	int32_t sp2 = -1;
	rt_t in3[5] = { in2[0], in2[1], in2[2], in2[3], T(KILN_I32, &sp2, 1, N_, N_, N_) };
	out = T(KILN_F32, z, 3, 4, N_, N_);
	assert_int_equal(rt_op_Slice(&F, "s", in3, 5, &out, 1, NULL, 0, NULL, 0), 0);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 4; j++)
			assert_true(z[i * 4 + j] == m[i * 4 + 3 - j]);
	out = T(KILN_F32, z, 3, 3, N_, N_);                 /* output disagrees */
	assert_int_not_equal(rt_op_Slice(&F, "s9", in3, 5, &out, 1, NULL, 0, NULL, 0), 0);
	assert_string_equal(ctx.err, "node 's9' (Slice): output dim 1 is 3, slice gives 4");
}

static void test_concat_split_tile(void **state)
{
	(void)state;
	float a[4] = { 1, 2, 3, 4 }, b[2] = { 5, 6 }, y[6], p[4], q[2];
	rt_t in[2] = { T(KILN_F32, a, 2, 2, N_, N_), T(KILN_F32, b, 2, 1, N_, N_) };
	rt_t out = T(KILN_F32, y, 2, 3, N_, N_);
	int64_t axis = 1;
	assert_int_equal(rt_op_Concat(&F, "c", in, 2, &out, 1, &axis, 1, NULL, 0), 0);
	float want[6] = { 1, 2, 5, 3, 4, 6 };
	assert_close(y, want, 6, 0);
	rt_t outs[2] = { T(KILN_F32, p, 2, 2, N_, N_), T(KILN_F32, q, 2, 1, N_, N_) };
	assert_int_equal(rt_op_Split(&F, "s", &out, 1, outs, 2, &axis, 1, NULL, 0), 0);
	assert_close(p, a, 4, 0);
	assert_close(q, b, 2, 0);

	int64_t rep[2] = { 2, 3 };
	float t[24];
	rt_t tin[2] = { T(KILN_F32, a, 2, 2, N_, N_), T(KILN_I64, rep, 2, N_, N_, N_) };
	rt_t tout = T(KILN_F32, t, 4, 6, N_, N_);
	assert_int_equal(rt_op_Tile(&F, "t", tin, 2, &tout, 1, NULL, 0, NULL, 0), 0);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 6; j++)
			assert_true(t[i * 6 + j] == a[(i % 2) * 2 + j % 2]);
}

static void test_generators(void **state)
{
	(void)state;
	int64_t s = 10, l = 1, d = -3, r[3];
	rt_t in[3] = { T(KILN_I64, &s, N_, N_, N_, N_), T(KILN_I64, &l, N_, N_, N_, N_),
	               T(KILN_I64, &d, N_, N_, N_, N_) };
	rt_t out = T(KILN_I64, r, 3, N_, N_, N_);
	assert_int_equal(rt_op_Range(&F, "r", in, 3, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(r[0] == 10 && r[1] == 7 && r[2] == 4);
	out = T(KILN_I64, r, 2, N_, N_, N_);                /* wrong count */
	assert_int_not_equal(rt_op_Range(&F, "r", in, 3, &out, 1, NULL, 0, NULL, 0), 0);

	float c[4];
	float val = 2.5f;
	int64_t shape[1] = { 4 };
	rt_t cin = T(KILN_I64, shape, 1, N_, N_, N_), cout = T(KILN_F32, c, 4, N_, N_, N_);
	assert_int_equal(rt_op_ConstantOfShape(&F, "k", &cin, 1, &cout, 1, NULL, 0, &val, 1), 0);
	assert_true(c[0] == 2.5f && c[3] == 2.5f);

	int32_t e[6];
	int64_t k = 1;
	rt_t eout = T(KILN_I32, e, 2, 3, N_, N_);
	assert_int_equal(rt_op_EyeLike(&F, "e", &eout, 1, &eout, 1, &k, 1, NULL, 0), 0);
	int32_t ew[6] = { 0, 1, 0, 0, 0, 1 };
	assert_memory_equal(e, ew, sizeof ew);

	float m[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, t[9];
	int64_t up = 0, kk = -1;
	rt_t tin[2] = { T(KILN_F32, m, 3, 3, N_, N_), T(KILN_I64, &kk, N_, N_, N_, N_) };
	rt_t tout = T(KILN_F32, t, 3, 3, N_, N_);
	assert_int_equal(rt_op_Trilu(&F, "t", tin, 2, &tout, 1, &up, 1, NULL, 0), 0);
	float tw[9] = { 0, 0, 0, 4, 0, 0, 7, 8, 0 };
	assert_close(t, tw, 9, 0);
}

/* Values that feed sizes (Range's bounds, Tile's repeats, ConstantOfShape's
 * shape) are checked without overflow against the planned dims. */
static void test_size_values(void **state)
{
	(void)state;
	/* Range(-2^62, 2^62, 2^61): 4 elements; limit - start + delta overflows int64 */
	int64_t s = -(1LL << 62), l = 1LL << 62, d = 1LL << 61, r[4];
	rt_t in[3] = { T(KILN_I64, &s, N_, N_, N_, N_), T(KILN_I64, &l, N_, N_, N_, N_),
	               T(KILN_I64, &d, N_, N_, N_, N_) };
	rt_t out = T(KILN_I64, r, 4, N_, N_, N_);
	assert_int_equal(rt_op_Range(&F, "r", in, 3, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(r[0] == s && r[1] == -(1LL << 61) && r[2] == 0 && r[3] == 1LL << 61);
	/* Range(INT64_MAX, INT64_MIN, INT64_MIN): 2 elements, delta's magnitude 2^63 */
	s = INT64_MAX, l = INT64_MIN, d = INT64_MIN;
	out = T(KILN_I64, r, 2, N_, N_, N_);
	assert_int_equal(rt_op_Range(&F, "r", in, 3, &out, 1, NULL, 0, NULL, 0), 0);
	assert_true(r[0] == INT64_MAX && r[1] == -1);

	/* a repeat whose product with the dim overflows: refused, not wrapped */
	float a[4] = { 1, 2, 3, 4 }, t[4];
	int64_t rep[2] = { 1, (int64_t)1 << 62 };
	rt_t tin[2] = { T(KILN_F32, a, 1, 4, N_, N_), T(KILN_I64, rep, 2, N_, N_, N_) };
	rt_t tout = T(KILN_F32, t, 1, 0, N_, N_);   /* 4 * 2^62 wraps to 0 */
	ctx.err[0] = 0;
	assert_int_not_equal(rt_op_Tile(&F, "t", tin, 2, &tout, 1, NULL, 0, NULL, 0), 0);
	assert_non_null(strstr(ctx.err, "node 't' (Tile): repeat 1"));

	/* ConstantOfShape: the shape input must be the planned output dims */
	float c[4], val = 1.0f;
	int64_t shape[2] = { 2, 2 };
	rt_t cin = T(KILN_I64, shape, 2, N_, N_, N_), cout = T(KILN_F32, c, 2, 2, N_, N_);
	assert_int_equal(rt_op_ConstantOfShape(&F, "k", &cin, 1, &cout, 1, NULL, 0, &val, 1), 0);
	shape[1] = 3;
	ctx.err[0] = 0;
	assert_int_not_equal(rt_op_ConstantOfShape(&F, "k", &cin, 1, &cout, 1, NULL, 0, &val, 1), 0);
	assert_non_null(strstr(ctx.err, "node 'k' (ConstantOfShape): shape element 1 is 3"));
}

static void test_gather(void **state)
{
	(void)state;
	float x[15];
	for (int i = 0; i < 15; i++)
		x[i] = (float)i;
	int64_t ind[2] = { 4, -5 };
	float y[6];
	rt_t in[2] = { T(KILN_F32, x, 5, 3, N_, N_), T(KILN_I64, ind, 2, N_, N_, N_) };
	rt_t out = T(KILN_F32, y, 2, 3, N_, N_);
	int64_t axis = 0;
	assert_int_equal(rt_op_Gather(&F, "g", in, 2, &out, 1, &axis, 1, NULL, 0), 0);
	float want[6] = { 12, 13, 14, 0, 1, 2 };
	assert_close(y, want, 6, 0);
	int32_t cols[2] = { 2, 0 };                          /* axis 1, i32 indices */
	in[1] = T(KILN_I32, cols, 2, N_, N_, N_);
	float yc[10];
	out = T(KILN_F32, yc, 5, 2, N_, N_);
	axis = 1;
	assert_int_equal(rt_op_Gather(&F, "g", in, 2, &out, 1, &axis, 1, NULL, 0), 0);
	assert_true(yc[0] == 2 && yc[1] == 0 && yc[9] == 12);

	/* token id past the vocabulary */
	float *emb = calloc(1024 * 4, sizeof(float));
	int64_t ids[3] = { 1, 1030, 2 };
	float ey[12];
	rt_t ein[2] = { T(KILN_F32, emb, 1024, 4, N_, N_), T(KILN_I64, ids, 1, 3, N_, N_) };
	rt_t eout = T(KILN_F32, ey, 1, 3, 4, N_);
	axis = 0;
	assert_int_not_equal(rt_op_Gather(&F, "embeddings.word", ein, 2, &eout, 1, &axis, 1, NULL, 0), 0);
	assert_string_equal(ctx.err, "node 'embeddings.word' (Gather): index 1030 out of range [0, 1024)");
	ids[1] = -1025;
	assert_int_not_equal(rt_op_Gather(&F, "g", ein, 2, &eout, 1, &axis, 1, NULL, 0), 0);
	free(emb);
}

static void test_gather_elements_nd_onehot(void **state)
{
	(void)state;
	float x[4] = { 1, 2, 3, 4 }, y[4];
	int64_t ind[4] = { 0, 0, 1, 0 };
	rt_t in[2] = { T(KILN_F32, x, 2, 2, N_, N_), T(KILN_I64, ind, 2, 2, N_, N_) };
	rt_t out = T(KILN_F32, y, 2, 2, N_, N_);
	int64_t axis = 1;
	assert_int_equal(rt_op_GatherElements(&F, "ge", in, 2, &out, 1, &axis, 1, NULL, 0), 0);
	float want[4] = { 1, 1, 4, 3 };
	assert_close(y, want, 4, 0);
	ind[3] = 2;
	assert_int_not_equal(rt_op_GatherElements(&F, "ge", in, 2, &out, 1, &axis, 1, NULL, 0), 0);
	assert_non_null(strstr(ctx.err, "index 2 out of range [0, 2)"));

	/* GatherND: data [2,2], indices [[1,0],[0,1]] -> [3, 2] */
	int64_t nd[4] = { 1, 0, 0, 1 }, bd = 0;
	in[1] = T(KILN_I64, nd, 2, 2, N_, N_);
	out = T(KILN_F32, y, 2, N_, N_, N_);
	assert_int_equal(rt_op_GatherND(&F, "gn", in, 2, &out, 1, &bd, 1, NULL, 0), 0);
	assert_true(y[0] == 3 && y[1] == 2);
	/* batch_dims 1: indices [[1],[0]] -> [x[0][1], x[1][0]] */
	int64_t nb[2] = { 1, 0 };
	bd = 1;
	in[1] = T(KILN_I64, nb, 2, 1, N_, N_);
	assert_int_equal(rt_op_GatherND(&F, "gn", in, 2, &out, 1, &bd, 1, NULL, 0), 0);
	assert_true(y[0] == 2 && y[1] == 3);

	int64_t oi[3] = { 0, -1, 7 }, depth = 3;
	float vals[2] = { 0, 1 }, oh[9];
	rt_t ohin[3] = { T(KILN_I64, oi, 3, N_, N_, N_), T(KILN_I64, &depth, N_, N_, N_, N_),
	                 T(KILN_F32, vals, 2, N_, N_, N_) };
	rt_t ohout = T(KILN_F32, oh, 3, 3, N_, N_);
	axis = 1;
	assert_int_equal(rt_op_OneHot(&F, "o", ohin, 3, &ohout, 1, &axis, 1, NULL, 0), 0);
	float ow[9] = { 1, 0, 0, 0, 0, 1, 0, 0, 0 };
	assert_close(oh, ow, 9, 0);
}

/* ---- pool ---- */

static void mark(void *arg, int64_t b, int64_t e)
{
	int *hits = arg;
	for (int64_t i = b; i < e; i++)
		hits[i]++;
}

static void test_pool(void **state)
{
	(void)state;
	int hits[1000] = {0};
	for (int rep = 0; rep < 50; rep++)
		rt_parallel_for(ctx.pool, 1000, mark, hits);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(hits[i], 50);
	rt_parallel_for(NULL, 3, mark, hits);
	assert_int_equal(hits[2], 51);
	struct rt_pool *p4 = rt_pool_create(4);
	assert_int_equal(rt_pool_size(p4), 4);
	rt_parallel_for(p4, 3, mark, hits);                  /* fewer items than threads */
	assert_int_equal(hits[0], 52);
	rt_pool_free(p4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_broadcast),
		cmocka_unit_test(test_add_large_parallel),
		cmocka_unit_test(test_int_arith),
		cmocka_unit_test(test_pow_variadic),
		cmocka_unit_test(test_more_dtypes),
		cmocka_unit_test(test_where),
		cmocka_unit_test(test_unary),
		cmocka_unit_test(test_cast),
		cmocka_unit_test(test_reduce),
		cmocka_unit_test(test_softmax),
		cmocka_unit_test(test_layernorm),
		cmocka_unit_test(test_matmul),
		cmocka_unit_test(test_gemm),
		cmocka_unit_test(test_einsum),
		cmocka_unit_test(test_transpose_expand),
		cmocka_unit_test(test_slice),
		cmocka_unit_test(test_concat_split_tile),
		cmocka_unit_test(test_generators),
		cmocka_unit_test(test_size_values),
		cmocka_unit_test(test_gather),
		cmocka_unit_test(test_gather_elements_nd_onehot),
		cmocka_unit_test(test_pool),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

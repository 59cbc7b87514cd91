/* test_rt_pack.c: the kernels of padding-free batches (runtime/kernels_pack.c,
 * kiln compile --remove-padding) and KlnAttention's packed mode.
 *
 * - rt_shape_KlnPackTokens + KlnPackTokens + KlnUnpackTokens on many batches
 *   (B 1..5, sequence lengths 0, 1, full and random, masks in f32, i32, i64
 *   and bool): T is the number of ones, cu_seqlens their prefix sums, the
 *   packed rows are x's real rows in order, a follower pack (given
 *   cu_seqlens) gives the same, unpack puts them back with zeros at padded
 *   positions; canaries after every output stay untouched.
 * - KlnAttention on packed tokens (cu_seqlens) against the same kernel on
 *   the padded batch with the key-padding mask: equal within 1e-5 at every
 *   real position, with and without a causal edge, 1 and 3 heads, grouped
 *   K/V heads; canaries after the output.
 * - refusals: a mask that is not right-padded or not 0/1, wrong ranks and
 *   shapes, offsets that do not add up: the kernels return 1, never crash. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rt_internal.h"
#include "rt_test.h"

RT_KERNEL(KlnAttention);
RT_KERNEL(KlnPackTokens);
RT_KERNEL(KlnUnpackTokens);
RT_SHAPE(KlnPackTokens);

#define CANARY 12345.0f
#define NCAN 16

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static float frand(void)   /* [-1, 1) */
{
	return (float)((double)(next() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* floats with NCAN canaries after n */
static float *fbuf(int64_t n)
{
	float *p = malloc(sizeof(float) * (size_t)(n + NCAN));
	assert_non_null(p);
	for (int64_t i = 0; i < n + NCAN; i++)
		p[i] = i < n ? frand() : CANARY;
	return p;
}

static void check_canaries(const float *p, int64_t n, const char *what)
{
	for (int i = 0; i < NCAN; i++)
		if (p[n + i] != CANARY)
			fail_msg("%s: canary %d after %lld elements overwritten", what, i, (long long)n);
}

/* A mask [B, S] of dtype dt with row b's first len[b] entries 1. */
static void *make_mask(int32_t dt, int64_t B, int64_t S, const int64_t *len)
{
	void *m = calloc((size_t)(B * S), 8);
	assert_non_null(m);
	for (int64_t b = 0; b < B; b++)
		for (int64_t s = 0; s < S; s++) {
			int v = s < len[b];
			int64_t i = b * S + s;
			switch (dt) {
			case KILN_F32: ((float *)m)[i] = (float)v; break;
			case KILN_I32: ((int32_t *)m)[i] = v; break;
			case KILN_I64: ((int64_t *)m)[i] = v; break;
			default: ((uint8_t *)m)[i] = (uint8_t)v; break;
			}
		}
	return m;
}

static void set_mask(void *m, int32_t dt, int64_t i, double v)
{
	switch (dt) {
	case KILN_F32: ((float *)m)[i] = (float)v; break;
	case KILN_I32: ((int32_t *)m)[i] = (int32_t)v; break;
	case KILN_I64: ((int64_t *)m)[i] = (int64_t)v; break;
	default: ((uint8_t *)m)[i] = (uint8_t)v; break;
	}
}

static const int32_t mask_types[4] = {KILN_F32, KILN_I32, KILN_I64, KILN_BOOL};

/* One batch: pack (leader and follower), unpack, against the definition. */
static void run_pack(int64_t B, int64_t S, int64_t H, const int64_t *len, int32_t dt)
{
	int64_t NT = 0;
	for (int64_t b = 0; b < B; b++)
		NT += len[b];
	void *mask = make_mask(dt, B, S, len);
	float *x = fbuf(B * S * H), *y = fbuf(NT * H), *y2 = fbuf(NT * H), *z = fbuf(B * S * H);
	int32_t *cu = malloc(sizeof(int32_t) * (size_t)(B + 1 + NCAN));
	assert_non_null(cu);
	for (int i = 0; i < NCAN; i++)
		cu[B + 1 + i] = -7;
	rt_t in[3] = {T(x, 3, B, S, H, 0, KILN_F32), T(mask, 2, B, S, 0, 0, dt), T(NULL, 0, 0, 0, 0, 0, 0)};
	rt_t out[2] = {T(NULL, 3, 0, 0, 0, 0, KILN_F32), T(NULL, 1, 0, 0, 0, 0, KILN_I32)};
	/* the shape function binds T */
	assert_int_equal(rt_shape_KlnPackTokens(frame(), "pack", in, 2, out, 2, NULL, 0, NULL, 0), 0);
	assert_int_equal(out[0].dims[0], 1);
	assert_int_equal(out[0].dims[1], NT);
	assert_int_equal(out[0].dims[2], H);
	assert_int_equal(out[1].dims[0], B + 1);
	out[0].data = y;
	out[1].data = cu;
	assert_int_equal(rt_op_KlnPackTokens(frame(), "pack", in, 2, out, 2, NULL, 0, NULL, 0), 0);
	int64_t t = 0;
	for (int64_t b = 0; b < B; b++) {
		assert_int_equal(cu[b], t);
		for (int64_t s = 0; s < len[b]; s++, t++)
			for (int64_t h = 0; h < H; h++)
				if (y[t * H + h] != x[(b * S + s) * H + h])
					fail_msg("B %lld S %lld: packed row %lld (b %lld, s %lld) col %lld differs",
					         (long long)B, (long long)S, (long long)t, (long long)b, (long long)s,
					         (long long)h);
	}
	assert_int_equal(cu[B], NT);
	for (int i = 0; i < NCAN; i++)
		assert_int_equal(cu[B + 1 + i], -7);
	check_canaries(y, NT * H, "packed");
	/* a follower pack of the same mask: cu_seqlens given, no second output */
	in[2] = T(cu, 1, B + 1, 0, 0, 0, KILN_I32);
	rt_t o2 = T(y2, 3, 1, NT, H, 0, KILN_F32);
	assert_int_equal(rt_op_KlnPackTokens(frame(), "pack2", in, 3, &o2, 1, NULL, 0, NULL, 0), 0);
	assert_memory_equal(y, y2, sizeof(float) * (size_t)(NT * H));
	check_canaries(y2, NT * H, "follower pack");
	/* unpack */
	rt_t uin[3] = {T(y, 3, 1, NT, H, 0, KILN_F32), T(cu, 1, B + 1, 0, 0, 0, KILN_I32),
	               T(mask, 2, B, S, 0, 0, dt)};
	rt_t uout = T(z, 3, B, S, H, 0, KILN_F32);
	assert_int_equal(rt_op_KlnUnpackTokens(frame(), "unpack", uin, 3, &uout, 1, NULL, 0, NULL, 0), 0);
	for (int64_t b = 0; b < B; b++)
		for (int64_t s = 0; s < S; s++)
			for (int64_t h = 0; h < H; h++) {
				int64_t i = (b * S + s) * H + h;
				float want = s < len[b] ? x[i] : 0.0f;
				if (z[i] != want)
					fail_msg("unpack B %lld S %lld: [%lld, %lld, %lld] is %g, want %g", (long long)B,
					         (long long)S, (long long)b, (long long)s, (long long)h, z[i], want);
			}
	check_canaries(z, B * S * H, "unpacked");
	free(mask); free(x); free(y); free(y2); free(z); free(cu);
}

static void test_pack_unpack(void **state)
{
	(void)state;
	int64_t len[8];
	int cases = 0;
	for (int64_t B = 1; B <= 5; B++)
		for (int64_t S = 1; S <= 17; S += 4)
			for (int pat = 0; pat < 4; pat++)
				for (int d = 0; d < 4; d++) {
					for (int64_t b = 0; b < B; b++)
						len[b] = pat == 0 ? S :                       /* all full */
						         pat == 1 ? 1 :                       /* length 1 */
						         pat == 2 ? (b % 2 ? 0 : S) :          /* empty rows */
						         (int64_t)(next() % (uint64_t)(S + 1));
					run_pack(B, S, 1 + (int64_t)(next() % 40), len, mask_types[d]);
					cases++;
				}
	assert_true(cases > 300);
}

/* Packed attention against the padded batch with the mask. */
static void run_att(int64_t B, int64_t S, int64_t H, int64_t Hkv, int64_t D, int causal,
                    const int64_t *len)
{
	int64_t NT = 0, ld = (H + 2 * Hkv) * D, ho = H * D;
	int32_t *cu = malloc(sizeof(int32_t) * (size_t)(B + 1));
	assert_non_null(cu);
	cu[0] = 0;
	for (int64_t b = 0; b < B; b++) {
		NT += len[b];
		cu[b + 1] = (int32_t)NT;
	}
	/* one QKV tensor, as fuse-qkv makes it */
	float *qkv = fbuf(B * S * ld), *o = fbuf(B * S * ho), *pq = fbuf(NT * ld), *po = fbuf(NT * ho);
	for (int64_t b = 0; b < B; b++)
		memcpy(pq + (int64_t)cu[b] * ld, qkv + b * S * ld, sizeof(float) * (size_t)(len[b] * ld));
	int64_t *mask = make_mask(KILN_I64, B, S, len);
	int64_t ia[10] = {D, H * D, 0, 0, H, 0, D, (H + Hkv) * D, causal ? 2 : 0, Hkv};
	float fa[3] = {-3.4e38f, 1.0f / sqrtf((float)D), -1e30f};
	rt_t in[6] = {T(qkv, 3, B, S, ld, 0, KILN_F32), T(qkv, 3, B, S, ld, 0, KILN_F32),
	              T(qkv, 3, B, S, ld, 0, KILN_F32), T(NULL, 0, 0, 0, 0, 0, 0),
	              T(mask, 2, B, S, 0, 0, KILN_I64), T(NULL, 0, 0, 0, 0, 0, 0)};
	rt_t out = T(o, 3, B, S, ho, 0, KILN_F32);
	assert_int_equal(rt_op_KlnAttention(frame(), "att", in, 5, &out, 1, ia, 10, fa, 3), 0);
	rt_t pin[6] = {T(pq, 3, 1, NT, ld, 0, KILN_F32), T(pq, 3, 1, NT, ld, 0, KILN_F32),
	               T(pq, 3, 1, NT, ld, 0, KILN_F32), T(NULL, 0, 0, 0, 0, 0, 0),
	               T(NULL, 0, 0, 0, 0, 0, 0), T(cu, 1, B + 1, 0, 0, 0, KILN_I32)};
	rt_t pout = T(po, 3, 1, NT, ho, 0, KILN_F32);
	assert_int_equal(rt_op_KlnAttention(frame(), "att", pin, 6, &pout, 1, ia, 10, fa, 3), 0);
	for (int64_t b = 0; b < B; b++)
		for (int64_t s = 0; s < len[b]; s++)
			for (int64_t c = 0; c < ho; c++) {
				float want = o[(b * S + s) * ho + c], got = po[(cu[b] + s) * ho + c];
				if (!(fabsf(got - want) <= 1e-5f + 1e-5f * fabsf(want)))
					fail_msg("attention B %lld S %lld H %lld causal %d: b %lld s %lld col %lld: "
					         "packed %.9g, padded %.9g", (long long)B, (long long)S, (long long)H,
					         causal, (long long)b, (long long)s, (long long)c, got, want);
			}
	check_canaries(po, NT * ho, "packed attention");
	free(cu); free(qkv); free(o); free(pq); free(po); free(mask);
}

static void test_packed_attention(void **state)
{
	(void)state;
	int64_t len[6];
	int64_t shapes[][4] = {{1, 1, 1, 8}, {2, 7, 1, 4}, {3, 16, 3, 8}, {4, 33, 2, 16},
	                       {5, 70, 3, 8}, {2, 130, 4, 8}};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		int64_t B = shapes[i][0], S = shapes[i][1], H = shapes[i][2], D = shapes[i][3];
		for (int pat = 0; pat < 4; pat++)
			for (int causal = 0; causal < 2; causal++) {
				for (int64_t b = 0; b < B; b++)
					len[b] = pat == 0 ? S : pat == 1 ? 1 :
					         pat == 2 ? (b == 0 ? S : 1 + b % S) : 1 + (int64_t)(next() % (uint64_t)S);
				run_att(B, S, H, H, D, causal, len);
				if (H % 2 == 0)
					run_att(B, S, H, H / 2, D, causal, len);   /* grouped K/V heads */
			}
	}
}

static void test_refusals(void **state)
{
	(void)state;
	int64_t B = 2, S = 4, H = 3, len[2] = {4, 2};
	float *x = fbuf(B * S * H), *y = fbuf(B * S * H);
	int32_t cu[3];
	for (int d = 0; d < 4; d++) {
		int32_t dt = mask_types[d];
		void *mask = make_mask(dt, B, S, len);
		rt_t in[2] = {T(x, 3, B, S, H, 0, KILN_F32), T(mask, 2, B, S, 0, 0, dt)};
		rt_t out[2] = {T(y, 3, 1, 6, H, 0, KILN_F32), T(cu, 1, B + 1, 0, 0, 0, KILN_I32)};
		assert_int_equal(rt_shape_KlnPackTokens(frame(), "p", in, 2, out, 2, NULL, 0, NULL, 0), 0);
		assert_int_equal(out[0].dims[1], 6);
		assert_int_equal(rt_op_KlnPackTokens(frame(), "p", in, 2, out, 2, NULL, 0, NULL, 0), 0);
		/* a hole: 1 0 1 0 in row 1 (left or middle padding) */
		set_mask(mask, dt, 1 * S + 2, 1);
		set_mask(mask, dt, 1 * S + 1, 0);
		assert_int_equal(rt_shape_KlnPackTokens(frame(), "p", in, 2, out, 2, NULL, 0, NULL, 0), 1);
		assert_int_equal(rt_op_KlnPackTokens(frame(), "p", in, 2, out, 2, NULL, 0, NULL, 0), 1);
		set_mask(mask, dt, 1 * S + 1, 1);
		set_mask(mask, dt, 1 * S + 2, 0);
		/* not 0/1 (bool holds 0/1 only; 2 is what an i64 or f32 could hold) */
		if (dt != KILN_BOOL) {
			set_mask(mask, dt, 0, 2);
			assert_int_equal(rt_shape_KlnPackTokens(frame(), "p", in, 2, out, 2, NULL, 0, NULL, 0), 1);
			set_mask(mask, dt, 0, 1);
		}
		if (dt == KILN_F32) {
			((float *)mask)[3] = 0.5f;
			assert_int_equal(rt_shape_KlnPackTokens(frame(), "p", in, 2, out, 2, NULL, 0, NULL, 0), 1);
			((float *)mask)[3] = NAN;
			assert_int_equal(rt_shape_KlnPackTokens(frame(), "p", in, 2, out, 2, NULL, 0, NULL, 0), 1);
			((float *)mask)[3] = 1.0f;
		}
		/* the output's NT disagrees with the mask */
		out[0].dims[1] = 5;
		assert_int_equal(rt_op_KlnPackTokens(frame(), "p", in, 2, out, 2, NULL, 0, NULL, 0), 1);
		out[0].dims[1] = 6;
		/* wrong ranks and shapes */
		rt_t bad[2] = {T(x, 3, B, S, H, 0, KILN_F32), T(mask, 1, B * S, 0, 0, 0, dt)};
		assert_int_equal(rt_shape_KlnPackTokens(frame(), "p", bad, 2, out, 2, NULL, 0, NULL, 0), 1);
		bad[1] = T(mask, 2, B, S - 1, 0, 0, dt);
		assert_int_equal(rt_op_KlnPackTokens(frame(), "p", bad, 2, out, 2, NULL, 0, NULL, 0), 1);
		free(mask);
	}
	/* unpack: offsets that do not add up or run backwards, a sequence longer than S */
	int64_t *mask = make_mask(KILN_I64, B, S, len);
	int32_t bad_cu[][3] = {{0, 4, 5}, {1, 4, 6}, {0, 5, 6}, {0, 7, 6}, {0, -1, 6}};
	for (size_t i = 0; i < sizeof bad_cu / sizeof bad_cu[0]; i++) {
		rt_t uin[3] = {T(x, 3, 1, 6, H, 0, KILN_F32), T(bad_cu[i], 1, 3, 0, 0, 0, KILN_I32),
		               T(mask, 2, B, S, 0, 0, KILN_I64)};
		rt_t uout = T(y, 3, B, S, H, 0, KILN_F32);
		assert_int_equal(rt_op_KlnUnpackTokens(frame(), "u", uin, 3, &uout, 1, NULL, 0, NULL, 0), 1);
	}
	/* packed attention: a mask beside cu_seqlens, a batch of 2, offsets past NT */
	int32_t good[3] = {0, 4, 6}, past[3] = {0, 4, 7};
	int64_t ia[10] = {1, 1, 0, 0, 1, 0, 1, 2, 0, 0};
	float fa[3] = {-1e4f, 1.0f, 0.0f};
	rt_t ain[6] = {T(x, 3, 1, 6, 3, 0, KILN_F32), T(x, 3, 1, 6, 3, 0, KILN_F32),
	               T(x, 3, 1, 6, 3, 0, KILN_F32), T(NULL, 0, 0, 0, 0, 0, 0),
	               T(mask, 2, 1, 6, 0, 0, KILN_I64), T(good, 1, 3, 0, 0, 0, KILN_I32)};
	rt_t aout = T(y, 3, 1, 6, 1, 0, KILN_F32);
	assert_int_equal(rt_op_KlnAttention(frame(), "a", ain, 6, &aout, 1, ia, 10, fa, 3), 1);
	ain[4] = T(NULL, 0, 0, 0, 0, 0, 0);
	assert_int_equal(rt_op_KlnAttention(frame(), "a", ain, 6, &aout, 1, ia, 10, fa, 3), 0);
	ain[5] = T(past, 1, 3, 0, 0, 0, KILN_I32);
	assert_int_equal(rt_op_KlnAttention(frame(), "a", ain, 6, &aout, 1, ia, 10, fa, 3), 1);
	ain[5] = T(good, 1, 3, 0, 0, 0, KILN_I32);
	for (int k = 0; k < 3; k++)
		ain[k] = T(x, 3, 2, 3, 3, 0, KILN_F32);
	aout = T(y, 3, 2, 3, 1, 0, KILN_F32);
	assert_int_equal(rt_op_KlnAttention(frame(), "a", ain, 6, &aout, 1, ia, 10, fa, 3), 1);
	free(mask); free(x); free(y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack_unpack),
		cmocka_unit_test(test_packed_attention),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

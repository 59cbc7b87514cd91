/* rt_kernels_check: the runtime's SIMD kernels on the machine it was built
 * for (cross-built by cmake/cross, run under qemu by tests/scripts/
 * aarch64.sh), against double-precision references (tests/unit/rt_ref.h,
 * shared with the unit tests).  No cmocka (there is none for the target):
 * prints one line per failure, exit 1 if any.
 *
 * - GEMM, every micro-kernel this CPU runs (rt_sgemm_use: "neon" and "c"
 *   on aarch64): shapes crossing every row and column tail, transposed A
 *   and B, alpha and beta, weights in panels, bias + GELU and QuickGELU
 *   epilogues; C's padding columns left as they were.
 * - vm_exp4 (aarch64): ulp error over [-104, 88.7], the limits, NaN.
 * - GELU (erf, tanh, QuickGELU) over a range, with 0, +-inf, NaN, every
 *   length 1..9.
 * - KlnAttention with V = identity (the outputs are the softmax rows) and
 *   KlnLayerNorm / KlnSkipLayerNorm, SIMD path and scalar path, row
 *   lengths 1..37, 128, 771.
 * - KlnRMSNorm with and without the skip input and the sum output, on
 *   every row path this CPU runs (rt_rms_path_use: "neon" and scalar on
 *   aarch64), the same lengths; the sum bit for bit. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "rt_internal.h"
#include "rt_ref.h"         /* tests/unit: the references the unit tests use */
#include "rt_test.h"
#include "vmath.h"

RT_KERNEL(KlnAttention);
RT_KERNEL(KlnLayerNorm);
RT_KERNEL(KlnSkipLayerNorm);
RT_KERNEL(KlnRMSNorm);

static int failures, checks;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
	checks++;
	if (ok)
		return;
	if (failures++ < 20) {
		va_list ap;
		va_start(ap, fmt);
		printf("FAIL: ");
		vprintf(fmt, ap);
		putchar('\n');
		va_end(ap);
	}
}

/* ---- vm_exp4 (aarch64) ---- */

#if defined(__aarch64__)
static void exp_checks(void)
{
	double worst = 0;
	float wx = 0;
	for (int i = 0; i <= 400000; i += 4) {
		float x[4], y[4];
		for (int l = 0; l < 4; l++)
			x[l] = -104.0f + 192.7f * (float)(i + l) / 400000.0f;
		vst1q_f32(y, vm_exp4(vld1q_f32(x)));
		for (int l = 0; l < 4; l++) {
			double r = exp((double)x[l]);
			double u = r > 3.4028234e38 ? (isinf(y[l]) ? 0 : INFINITY) : ref_ulps(y[l], r);
			if (!(u <= worst))
				wx = x[l];
			worst = ref_worse(worst, u);
		}
	}
	check(worst <= 2.0, "vm_exp4: %.3g ulp at x = %.9g", worst, wx);
	float sp[4] = {-INFINITY, INFINITY, NAN, -1000.0f}, y[4];
	vst1q_f32(y, vm_exp4(vld1q_f32(sp)));
	check(y[0] == 0.0f && y[1] == INFINITY && isnan(y[2]) && y[3] == 0.0f,
	      "vm_exp4 of -inf, inf, NaN, -1000: %g %g %g %g", y[0], y[1], y[2], y[3]);
	printf("vm_exp4: worst %.3g ulp\n", worst);
}
#else
static void exp_checks(void)
{
}
#endif

/* ---- GEMM ---- */

static void gemm_case(struct rt_pool *pool, const char *uk, int ta, int tb, int64_t M, int64_t N,
                      int64_t K, float alpha, float beta, int panels, int act, bool bias)
{
	RefGemm g = ref_gemm_new(ta, tb, M, N, K, alpha, beta, 3, 5, 2);
	float *bv = ref_alloc(sizeof(float) * (size_t)N);
	ref_fill(bv, N, -1, 1);
	rt_gemm_epi epi = {bias ? bv : NULL, act};
	if (panels) {
		float *Bc = ref_gemm_dense_b(&g);
		float *Bp = ref_alloc(sizeof(float) * (size_t)rt_gemm_panel_floats(K, N));
		rt_gemm_pack_panels(Bc, K, N, Bp);
		rt_sgemm_panels(pool, M, N, K, g.A, g.lda, Bp, g.C, g.ldc, &epi);
		free(Bc);
		free(Bp);
	} else {
		rt_sgemm_epi(pool, ta, tb, M, N, K, alpha, g.A, g.lda, g.B, g.ldb, beta, g.C, g.ldc, &epi);
	}
	double worst = ref_gemm_worst(&g, epi.bias, act, 1.0);
	check(worst < 1e-5, "gemm %s ta %d tb %d M %lld N %lld K %lld alpha %g beta %g panels %d act %d "
	      "bias %d: relative error %.3g", uk, ta, tb, (long long)M, (long long)N, (long long)K,
	      alpha, beta, panels, act, bias, worst);
	ref_gemm_free(&g);
	free(bv);
}

static void gemm_checks(struct rt_pool *pool)
{
	static const char *const uks[] = {"neon", "avx512", "avx2", "c"};
	static const int64_t ms[] = {1, 3, 7, 8, 9, 17, 50};
	static const int64_t ns[] = {1, 5, 12, 13, 24, 47, 48, 100};
	static const int64_t ks[] = {1, 4, 7, 64, 300};
	for (size_t u = 0; u < sizeof uks / sizeof uks[0]; u++) {
		if (rt_sgemm_use(uks[u]))
			continue;          /* not on this CPU */
		printf("gemm kernel %s\n", rt_sgemm_kernel());
		for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
			for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
				int64_t M = ms[a], N = ns[b], K = ks[(a + b) % 5];
				gemm_case(pool, uks[u], 0, 0, M, N, K, 1.0f, 0.0f, 0, 0, false);
				gemm_case(pool, uks[u], 0, 0, M, N, K, 1.0f, 0.0f, 1, (int)((a + b) % 4), true);
				if ((a + b) % 2 == 0) {
					gemm_case(pool, uks[u], 1, 0, M, N, K, 0.5f, 0.0f, 0, 0, false);
					gemm_case(pool, uks[u], 0, 1, M, N, K, 1.0f, 2.0f, 0, 1, true);
					gemm_case(pool, uks[u], 1, 1, M, N, K, -1.0f, 0.5f, 0, 2, false);
				}
			}
		/* longer K than a K step, bigger than a block */
		gemm_case(pool, uks[u], 0, 0, 200, 100, 700, 1.0f, 0.0f, 1, 1, true);
		gemm_case(pool, uks[u], 0, 1, 30, 60, 1100, 1.0f, 1.0f, 0, 0, false);
		gemm_case(pool, uks[u], 0, 0, 200, 100, 700, 1.0f, 0.0f, 1, 3, true);
		rt_sgemm_use(NULL);
	}
}

/* ---- GELU ---- */

static void gelu_checks(void)
{
	static const char *const uks[] = {"neon", "avx512", "avx2", "c"};
	for (size_t u = 0; u < sizeof uks / sizeof uks[0]; u++) {
		if (rt_sgemm_use(uks[u]))
			continue;
		for (int approx = 0; approx <= 2; approx++) {
			enum { N = 4001 };
			float *x = ref_alloc(N * sizeof(float)), *y = ref_alloc(N * sizeof(float));
			for (int i = 0; i < N; i++)
				x[i] = -12.0f + 24.0f * (float)i / (N - 1);
			x[0] = -INFINITY; x[1] = INFINITY; x[2] = NAN; x[3] = 0.0f; x[4] = -0.0f;
			memcpy(y, x, N * sizeof(float));
			rt_gelu_inplace(y, N, approx);
			for (int i = 0; i < N; i++) {
				double r = ref_gelu(x[i], approx + 1);
				/* +inf -> +inf; -inf: -inf * 0, NaN (or the limit 0) */
				bool ok = x[i] == -INFINITY ? isnan(y[i]) || y[i] == 0.0f
				          : isnan(r) ? isnan(y[i]) : isinf(r) ? y[i] == r
				          : fabs(y[i] - r) <= 3e-7 * fabs(r) + 2e-7;
				check(ok, "gelu %s approx %d x %.9g: %.9g, reference %.9g", uks[u], approx,
				      x[i], y[i], r);
			}
			/* lengths 1..9: the tails write nothing past n */
			for (int n = 1; n <= 9; n++) {
				float buf[12];
				for (int i = 0; i < 12; i++)
					buf[i] = i < n ? 1.0f : 77.0f;
				rt_gelu_inplace(buf, n, approx);
				check(buf[n] == 77.0f && buf[11] == 77.0f &&
				      fabs(buf[0] - ref_gelu(1.0, approx + 1)) < 1e-6,
				      "gelu %s length %d: tail overwritten or wrong value %g", uks[u], n, buf[0]);
			}
			free(x);
			free(y);
		}
		rt_sgemm_use(NULL);
	}
}

/* ---- fused: softmax of the attention, layer norms ---- */

static void attention_case(int simd, int64_t Sk, bool guard, bool mask)
{
	const int64_t B = 2, H = 2, Sq = 3, D = 8, ho = H * Sk;
	float *q = ref_alloc(sizeof(float) * (size_t)(B * Sq * H * D));
	float *k = ref_alloc(sizeof(float) * (size_t)(B * Sk * H * D));
	float *v = ref_alloc(sizeof(float) * (size_t)(B * Sk * ho));
	float *o = ref_alloc(sizeof(float) * (size_t)(B * Sq * ho));
	int64_t *m = ref_alloc(sizeof(int64_t) * (size_t)(B * Sk));
	for (int64_t i = 0; i < B * Sq * H * D; i++) q[i] = ref_frand(-2, 2);
	for (int64_t i = 0; i < B * Sk * H * D; i++) k[i] = ref_frand(-2, 2);
	/* V = identity per head: head h of row j is e_j */
	memset(v, 0, sizeof(float) * (size_t)(B * Sk * ho));
	for (int64_t b = 0; b < B; b++)
		for (int64_t j = 0; j < Sk; j++)
			for (int64_t h = 0; h < H; h++)
				v[(b * Sk + j) * ho + h * Sk + j] = 1.0f;
	for (int64_t i = 0; i < B * Sk; i++)
		m[i] = !mask || i % 3 != 1;
	if (mask && guard)     /* batch 1 fully masked with a -inf filter: NaN rows, 0 with the guard */
		for (int64_t j = 0; j < Sk; j++)
			m[Sk + j] = 0;
	float scale = 0.35f, filter = guard ? -INFINITY : -10000.0f;
	rt_t min = mask ? T(m, 2, B, Sk, 0, 0, KILN_I64) : T(NULL, 0, 0, 0, 0, 0, KILN_I64);
	rt_t in[5] = {T(q, 3, B, Sq, H * D, 0, KILN_F32), T(k, 3, B, Sk, H * D, 0, KILN_F32),
	              T(v, 3, B, Sk, ho, 0, KILN_F32), T(NULL, 0, 0, 0, 0, 0, KILN_F32), min};
	rt_t out = T(o, 3, B, Sq, ho, 0, KILN_F32);
	/* runtime/fused_attrs.def: ..., v_offset, causal, kv_num_heads; mask_filter, scale, causal_fill */
	int64_t ia[10] = {D, 0, 0, guard, H, 0, Sk, 0, 0, 0};
	float fa[3] = {filter, scale, 0.0f};
	rt_fused_simd_use(simd);
	int rc = rt_op_KlnAttention(frame(), "att", in, 5, &out, 1, ia, 10, fa, 3);
	rt_fused_simd_use(-1);
	check(rc == 0, "attention Sk %lld: returned %d", (long long)Sk, rc);
	double worst = 0;
	for (int64_t b = 0; b < B; b++)
		for (int64_t h = 0; h < H; h++)
			for (int64_t i = 0; i < Sq; i++) {
				double s[1024], mx = -INFINITY, sum = 0;
				for (int64_t j = 0; j < Sk; j++) {
					double d = 0;
					for (int64_t e = 0; e < D; e++)
						d += (double)q[(b * Sq + i) * H * D + h * D + e] *
						     k[(b * Sk + j) * H * D + h * D + e];
					double pad = m[b * Sk + j] == 1 ? 0.0 : (mask ? (double)filter : 0.0);
					s[j] = d * scale + pad;
					mx = s[j] > mx ? s[j] : mx;
				}
				for (int64_t j = 0; j < Sk; j++)
					sum += (s[j] = exp(s[j] - mx));
				for (int64_t j = 0; j < Sk; j++) {
					double r = s[j] / sum;
					if (isnan(r) && guard)
						r = 0;
					float got = o[(b * Sq + i) * ho + h * Sk + j];
					double err = isnan(r) ? (isnan(got) ? 0 : INFINITY) : fabs(got - r);
					worst = ref_worse(worst, err);
				}
			}
	check(worst < 2e-6, "attention %s Sk %lld guard %d mask %d: max error %.3g",
	      simd ? "simd" : "scalar", (long long)Sk, guard, mask, worst);
	free(q); free(k); free(v); free(o); free(m);
}

static void layernorm_case(int simd, int64_t n, bool skip, bool g1)
{
	const int64_t R = 5;
	size_t rows = sizeof(float) * (size_t)(R * n);
	float *x = ref_alloc(rows), *sk = ref_alloc(rows), *y = ref_alloc(rows), *sum = ref_alloc(rows);
	float *g = ref_alloc(sizeof(float) * (size_t)n), *be = ref_alloc(sizeof(float) * (size_t)n);
	float *bi = ref_alloc(sizeof(float) * (size_t)n);
	for (int64_t i = 0; i < R * n; i++) {
		x[i] = 3.0f + ref_frand(-2, 2);
		sk[i] = ref_frand(-1, 1);
	}
	for (int64_t i = 0; i < n; i++) {
		g[i] = ref_frand(0.5f, 1.5f);
		be[i] = ref_frand(-1, 1);
		bi[i] = ref_frand(-1, 1);
	}
	float eps = 1e-5f;
	rt_t gt = T(g, 1, g1 ? 1 : n, 0, 0, 0, KILN_F32), bt = T(be, 1, n, 0, 0, 0, KILN_F32);
	rt_t out[2] = {T(y, 2, R, n, 0, 0, KILN_F32), T(sum, 2, R, n, 0, 0, KILN_F32)};
	rt_fused_simd_use(simd);
	int rc;
	if (skip) {
		rt_t in[5] = {T(x, 2, R, n, 0, 0, KILN_F32), T(sk, 2, R, n, 0, 0, KILN_F32), gt, bt,
		              T(bi, 1, n, 0, 0, 0, KILN_F32)};
		rc = rt_op_KlnSkipLayerNorm(frame(), "sln", in, 5, out, 2, NULL, 0, &eps, 1);
	} else {
		rt_t in[3] = {T(x, 2, R, n, 0, 0, KILN_F32), gt, bt};
		rc = rt_op_KlnLayerNorm(frame(), "ln", in, 3, out, 1, NULL, 0, &eps, 1);
	}
	rt_fused_simd_use(-1);
	check(rc == 0, "layernorm n %lld: returned %d", (long long)n, rc);
	double worst = 0;
	for (int64_t r = 0; r < R; r++) {
		double mean = 0, var = 0, s[1024];
		for (int64_t k = 0; k < n; k++) {
			int64_t i = r * n + k;
			float f = skip ? x[i] + sk[i] + bi[k] : x[i];
			if (skip)
				check(f == sum[i], "skip layernorm n %lld: sum[%lld] %.9g, expected %.9g",
				      (long long)n, (long long)i, sum[i], f);
			mean += (s[k] = f);
		}
		mean /= (double)n;
		for (int64_t k = 0; k < n; k++)
			var += (s[k] - mean) * (s[k] - mean);
		double inv = 1.0 / sqrt(var / (double)n + eps);
		for (int64_t k = 0; k < n; k++) {
			double ref = (s[k] - mean) * inv * g[g1 ? 0 : k] + be[k];
			double err = fabs(y[r * n + k] - ref);
			worst = ref_worse(worst, err);
		}
	}
	check(worst < 5e-6, "layernorm %s n %lld skip %d gamma1 %d: max error %.3g",
	      simd ? "simd" : "scalar", (long long)n, skip, g1, worst);
	free(x); free(sk); free(y); free(sum); free(g); free(be); free(bi);
}

static void rmsnorm_case(int path, int64_t n, bool skip)
{
	const int64_t R = 3;
	size_t rows = sizeof(float) * (size_t)(R * n);
	float *x = ref_alloc(rows), *sk = ref_alloc(rows), *y = ref_alloc(rows), *sum = ref_alloc(rows);
	float *g = ref_alloc(sizeof(float) * (size_t)n);
	ref_fill(x, R * n, -2, 2);
	ref_fill(sk, R * n, -1, 1);
	ref_fill(g, n, 0.5f, 1.5f);
	float eps = 1e-6f;
	rt_t in[3] = {T(x, 2, R, n, 0, 0, KILN_F32), T(g, 1, n, 0, 0, 0, KILN_F32),
	              T(skip ? sk : NULL, 2, R, n, 0, 0, KILN_F32)};
	rt_t out[2] = {T(y, 2, R, n, 0, 0, KILN_F32), T(skip ? sum : NULL, 2, R, n, 0, 0, KILN_F32)};
	rt_rms_path_use(path);
	int rc = rt_op_KlnRMSNorm(frame(), "rms", in, 3, out, 2, NULL, 0, &eps, 1);
	rt_rms_path_use(-1);
	check(rc == 0, "rmsnorm n %lld: returned %d", (long long)n, rc);
	double worst = 0;
	for (int64_t r = 0; r < R; r++) {
		double ss = 0;
		for (int64_t k = 0; k < n; k++) {
			int64_t i = r * n + k;
			float f = skip ? x[i] + sk[i] : x[i];
			if (skip)
				check(f == sum[i], "rmsnorm n %lld: sum[%lld] %.9g, expected %.9g", (long long)n,
				      (long long)i, sum[i], f);
			ss += (double)f * f;
		}
		double inv = 1.0 / sqrt(ss / (double)n + eps);
		for (int64_t k = 0; k < n; k++) {
			int64_t i = r * n + k;
			double ref = (skip ? x[i] + sk[i] : x[i]) * inv * g[k];
			worst = ref_worse(worst, fabs(y[i] - ref) / (fabs(ref) > 1 ? fabs(ref) : 1));
		}
	}
	check(worst < 1e-5, "rmsnorm path %d n %lld skip %d: max error %.3g", path, (long long)n, skip, worst);
	free(x); free(sk); free(y); free(sum); free(g);
}

static void fused_checks(void)
{
	int modes = vm_have_simd() ? 2 : 1;
	printf("fused kernels: %s\n", modes == 2 ? "SIMD and scalar" : "scalar only");
	check(rt_fused_simd_use(1) == (modes == 2 ? 0 : -1), "rt_fused_simd_use(1) disagrees with vm_have_simd");
	rt_fused_simd_use(-1);
	int64_t lens[40];
	int nl = 0;
	for (int64_t n = 1; n <= 37; n++)
		lens[nl++] = n;
	lens[nl++] = 128;
	lens[nl++] = 771;
	for (int simd = 0; simd < modes; simd++)
		for (int i = 0; i < nl; i++) {
			attention_case(simd, lens[i], false, false);
			attention_case(simd, lens[i], i % 2 == 0, true);
			layernorm_case(simd, lens[i], false, false);
			layernorm_case(simd, lens[i], true, i % 3 == 0);
		}
	for (int path = 0; path < 4; path++) {
		if (rt_rms_path_use(path) != 0)
			continue;
		rt_rms_path_use(-1);
		printf("rmsnorm: path %d\n", path);
		for (int i = 0; i < nl; i++) {
			rmsnorm_case(path, lens[i], false);
			rmsnorm_case(path, lens[i], true);
		}
	}
}

int main(void)
{
	struct rt_pool *pool = frame()->pool;     /* rt_test.h: two threads */
	exp_checks();
	gemm_checks(pool);
	gelu_checks();
	fused_checks();
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}

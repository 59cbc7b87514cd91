/* rt_kernels_check: the runtime's SIMD kernels on the machine it was built
 * for (cross-built by cmake/cross, run under qemu by tests/scripts/
 * aarch64.sh), against double-precision references.  No cmocka (there is
 * none for the target): prints one line per failure, exit 1 if any.
 *
 * - GEMM, every micro-kernel this CPU runs (rt_sgemm_use: "neon" and "c"
 *   on aarch64): shapes crossing every row and column tail, transposed A
 *   and B, alpha and beta, weights in panels, bias + GELU and QuickGELU
 *   epilogues.
 * - vm_exp4 (aarch64): ulp error over [-104, 88.7], the limits, NaN.
 * - GELU (erf, tanh, QuickGELU) over a range, with 0, +-inf, NaN, every
 *   length 1..9.
 * - KlnAttention with V = identity (the outputs are the softmax rows) and
 *   KlnLayerNorm / KlnSkipLayerNorm, SIMD path and scalar path, row
 *   lengths 1..37, 128, 771. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "rt_internal.h"
#include "vmath.h"

RT_KERNEL(KlnAttention);
RT_KERNEL(KlnLayerNorm);
RT_KERNEL(KlnSkipLayerNorm);

static int failures, checks;
static kiln_frame fr;        /* kernels split their work over fr.pool */
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float frand(float lo, float hi)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return lo + (hi - lo) * (float)((double)(rng >> 11) / (double)(1ull << 53));
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return p;
}

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

static rt_t T(void *data, int rank, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
	rt_t t;
	memset(&t, 0, sizeof t);
	t.data = data;
	t.dtype = KILN_F32;
	t.rank = rank;
	int64_t d[4] = {d0, d1, d2, d3};
	for (int i = 0; i < rank && i < 4; i++)
		t.dims[i] = d[i];
	return t;
}

/* act: 1 erf, 2 tanh, 3 QuickGELU (the float constant 1.702f, as the kernels) */
static double gelu_ref(double x, int act)
{
	if (act == 3)
		return x / (1.0 + exp(-(double)1.702f * x));
	if (act == 2)
		return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
	return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

/* ---- vm_exp4 (aarch64) ---- */

#if defined(__aarch64__)
/* ulps between float a and the exact value r (normal results), or for
 * results below FLT_MIN the absolute error in units of the smallest
 * denormal */
static double ulps(float a, double r)
{
	if (fabs(r) < 1.17549435e-38)
		return fabs(a - r) / 1.4e-45;
	int e;
	frexp(r, &e);
	return fabs(a - r) / ldexp(1.0, e - 24);
}

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
			double u = r > 3.4028234e38 ? (isinf(y[l]) ? 0 : INFINITY) : ulps(y[l], r);
			if (!(u <= worst)) {
				worst = isnan(u) ? INFINITY : u;
				wx = x[l];
			}
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
	int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
	int64_t ar = ta ? K : M, br = tb ? N : K;
	float *A = xmalloc(sizeof(float) * (size_t)(ar * lda)), *B = xmalloc(sizeof(float) * (size_t)(br * ldb));
	float *C = xmalloc(sizeof(float) * (size_t)(M * ldc)), *C0 = xmalloc(sizeof(float) * (size_t)(M * ldc));
	float *bv = xmalloc(sizeof(float) * (size_t)N);
	for (int64_t i = 0; i < ar * lda; i++) A[i] = frand(-1, 1);
	for (int64_t i = 0; i < br * ldb; i++) B[i] = frand(-1, 1);
	for (int64_t i = 0; i < N; i++) bv[i] = frand(-1, 1);
	for (int64_t i = 0; i < M * ldc; i++) C0[i] = C[i] = beta == 0.0f ? NAN : frand(-1, 1);
	rt_gemm_epi epi = {bias ? bv : NULL, act};
	if (panels) {
		float *Bc = xmalloc(sizeof(float) * (size_t)(K * N));
		float *Bp = xmalloc(sizeof(float) * (size_t)rt_gemm_panel_floats(K, N));
		for (int64_t k = 0; k < K; k++)
			memcpy(Bc + k * N, B + k * ldb, (size_t)N * sizeof(float));
		rt_gemm_pack_panels(Bc, K, N, Bp);
		rt_sgemm_panels(pool, M, N, K, A, lda, Bp, C, ldc, &epi);
		free(Bc);
		free(Bp);
	} else {
		rt_sgemm_epi(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &epi);
	}
	double worst = 0;
	for (int64_t i = 0; i < M; i++)
		for (int64_t j = 0; j < N; j++) {
			double s = 0, mag = 0;
			for (int64_t k = 0; k < K; k++) {
				double a = ta ? A[k * lda + i] : A[i * lda + k];
				double b = tb ? B[j * ldb + k] : B[k * ldb + j];
				s += a * b;
				mag += fabs(a * b);
			}
			double ref = alpha * s, scale = fabs(alpha) * mag + 1;
			if (beta != 0.0f)
				ref += beta * (double)C0[i * ldc + j];
			if (bias)
				ref += bv[j];
			if (act)
				ref = gelu_ref(ref, act);
			double err = fabs((double)C[i * ldc + j] - ref) / scale;
			if (!(err <= worst))
				worst = isnan(err) ? INFINITY : err;
		}
	check(worst < 1e-5, "gemm %s ta %d tb %d M %lld N %lld K %lld alpha %g beta %g panels %d act %d "
	      "bias %d: relative error %.3g", uk, ta, tb, (long long)M, (long long)N, (long long)K,
	      alpha, beta, panels, act, bias, worst);
	free(A); free(B); free(C); free(C0); free(bv);
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
			float *x = xmalloc(N * sizeof(float)), *y = xmalloc(N * sizeof(float));
			for (int i = 0; i < N; i++)
				x[i] = -12.0f + 24.0f * (float)i / (N - 1);
			x[0] = -INFINITY; x[1] = INFINITY; x[2] = NAN; x[3] = 0.0f; x[4] = -0.0f;
			memcpy(y, x, N * sizeof(float));
			rt_gelu_inplace(y, N, approx);
			for (int i = 0; i < N; i++) {
				double r = gelu_ref(x[i], approx + 1);
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
				      fabs(buf[0] - gelu_ref(1.0, approx + 1)) < 1e-6,
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
	float *q = xmalloc(sizeof(float) * (size_t)(B * Sq * H * D));
	float *k = xmalloc(sizeof(float) * (size_t)(B * Sk * H * D));
	float *v = xmalloc(sizeof(float) * (size_t)(B * Sk * ho));
	float *o = xmalloc(sizeof(float) * (size_t)(B * Sq * ho));
	int64_t *m = xmalloc(sizeof(int64_t) * (size_t)(B * Sk));
	for (int64_t i = 0; i < B * Sq * H * D; i++) q[i] = frand(-2, 2);
	for (int64_t i = 0; i < B * Sk * H * D; i++) k[i] = frand(-2, 2);
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
	rt_t min = mask ? T(m, 2, B, Sk, 0, 0) : T(NULL, 0, 0, 0, 0, 0);
	min.dtype = KILN_I64;
	rt_t in[5] = {T(q, 3, B, Sq, H * D, 0), T(k, 3, B, Sk, H * D, 0), T(v, 3, B, Sk, ho, 0),
	              T(NULL, 0, 0, 0, 0, 0), min};
	rt_t out = T(o, 3, B, Sq, ho, 0);
	/* runtime/fused_attrs.def: ..., v_offset, causal, kv_num_heads; mask_filter, scale, causal_fill */
	int64_t ia[10] = {D, 0, 0, guard, H, 0, Sk, 0, 0, 0};
	float fa[3] = {filter, scale, 0.0f};
	rt_fused_simd_use(simd);
	int rc = rt_op_KlnAttention(&fr, "att", in, 5, &out, 1, ia, 10, fa, 3);
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
					if (!(err <= worst))
						worst = isnan(err) ? INFINITY : err;
				}
			}
	check(worst < 2e-6, "attention %s Sk %lld guard %d mask %d: max error %.3g",
	      simd ? "simd" : "scalar", (long long)Sk, guard, mask, worst);
	free(q); free(k); free(v); free(o); free(m);
}

static void layernorm_case(int simd, int64_t n, bool skip, bool g1)
{
	const int64_t R = 5;
	float *x = xmalloc(sizeof(float) * (size_t)(R * n)), *sk = xmalloc(sizeof(float) * (size_t)(R * n));
	float *y = xmalloc(sizeof(float) * (size_t)(R * n)), *sum = xmalloc(sizeof(float) * (size_t)(R * n));
	float *g = xmalloc(sizeof(float) * (size_t)n), *be = xmalloc(sizeof(float) * (size_t)n);
	float *bi = xmalloc(sizeof(float) * (size_t)n);
	for (int64_t i = 0; i < R * n; i++) {
		x[i] = 3.0f + frand(-2, 2);
		sk[i] = frand(-1, 1);
	}
	for (int64_t i = 0; i < n; i++) {
		g[i] = frand(0.5f, 1.5f);
		be[i] = frand(-1, 1);
		bi[i] = frand(-1, 1);
	}
	float eps = 1e-5f;
	rt_t gt = T(g, 1, g1 ? 1 : n, 0, 0, 0), bt = T(be, 1, n, 0, 0, 0);
	rt_t out[2] = {T(y, 2, R, n, 0, 0), T(sum, 2, R, n, 0, 0)};
	rt_fused_simd_use(simd);
	int rc;
	if (skip) {
		rt_t in[5] = {T(x, 2, R, n, 0, 0), T(sk, 2, R, n, 0, 0), gt, bt, T(bi, 1, n, 0, 0, 0)};
		rc = rt_op_KlnSkipLayerNorm(&fr, "sln", in, 5, out, 2, NULL, 0, &eps, 1);
	} else {
		rt_t in[3] = {T(x, 2, R, n, 0, 0), gt, bt};
		rc = rt_op_KlnLayerNorm(&fr, "ln", in, 3, out, 1, NULL, 0, &eps, 1);
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
			if (!(err <= worst))
				worst = isnan(err) ? INFINITY : err;
		}
	}
	check(worst < 5e-6, "layernorm %s n %lld skip %d gamma1 %d: max error %.3g",
	      simd ? "simd" : "scalar", (long long)n, skip, g1, worst);
	free(x); free(sk); free(y); free(sum); free(g); free(be); free(bi);
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
}

int main(void)
{
	struct rt_pool *pool = rt_pool_create(2);
	fr.pool = pool;
	exp_checks();
	gemm_checks(pool);
	gelu_checks();
	fused_checks();
	rt_pool_free(pool);
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}

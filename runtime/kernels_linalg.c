/* kernels_linalg.c: MatMul (numpy semantics: batch broadcast, 1-D cases),
 * Gemm, Einsum.
 *
 * f32 products use kiln's own sgemm (gemm.c), f64 OpenBLAS's dgemm.
 * Threads: OpenBLAS is set to one thread per process (rt_core.c); a single
 * f32 product is split by rt_sgemm over the pool; batched products are
 * split into (batch x row block) tasks, each one serial GEMM.  A 2-D
 * right-hand side under a batched left-hand side (the Linear layer case)
 * is folded into one tall GEMM first.
 *
 * Attributes: Gemm ia=[transA, transB], fa=[alpha, beta]; Einsum ia = the
 * equation, one byte per element. */
#include <string.h>

#include "gemm.h"
#include "rt_internal.h"

/* ---- MatMul ---- */

typedef struct mm_job {
	int32_t dt;
	const char *a, *b;
	char *c;
	int64_t M, N, K;
	int nbd;                             /* batch dims */
	int64_t bd[KILN_MAX_RANK];           /* batch dims of the output */
	int64_t as[KILN_MAX_RANK], bs[KILN_MAX_RANK];   /* matrix strides (elements) */
	int64_t nrb, rows;                   /* row blocks per batch, rows per block */
	size_t esz;
} mm_job;

#define MM_NAIVE(T) do { \
	const T *A = (const T *)a; const T *B = (const T *)b; T *C = (T *)c; \
	for (int64_t i = 0; i < m; i++) { \
		T *crow = C + i * N; \
		for (int64_t j = 0; j < N; j++) crow[j] = 0; \
		for (int64_t k = 0; k < K; k++) { \
			T av = A[i * K + k]; \
			const T *brow = B + k * N; \
			for (int64_t j = 0; j < N; j++) crow[j] += av * brow[j]; \
		} \
	} \
} while (0)

/* C[m x N] = A[m x K] * B[K x N], dense row-major */
static void mm_block(int32_t dt, const char *a, const char *b, char *c, int64_t m,
                     int64_t N, int64_t K)
{
	if (m == 0 || N == 0)
		return;
	if (K == 0) {
		memset(c, 0, (size_t)(m * N) * rt_dtype_size(dt));
		return;
	}
	switch (dt) {
	case KILN_F32:
		rt_sgemm(NULL, 0, 0, m, N, K, 1.0f, (const float *)a, K, (const float *)b, N, 0.0f,
		         (float *)c, N);
		break;
	case KILN_F64:
		MM_NAIVE(double);
		break;
	case KILN_I64: MM_NAIVE(int64_t); break;
	case KILN_I32: MM_NAIVE(int32_t); break;
	default: break;
	}
}

static void mm_range(void *arg, int64_t b, int64_t e)
{
	const mm_job *j = arg;
	int64_t esz = (int64_t)j->esz;
	for (int64_t t = b; t < e; t++) {
		int64_t batch = t / j->nrb, rb = t % j->nrb;
		int64_t r0 = rb * j->rows, r1 = r0 + j->rows < j->M ? r0 + j->rows : j->M;
		if (r0 >= r1)
			continue;
		int64_t offa = 0, offb = 0, rem = batch;
		for (int d = j->nbd - 1; d >= 0; d--) {
			int64_t i = rem % j->bd[d];
			rem /= j->bd[d];
			offa += i * j->as[d];
			offb += i * j->bs[d];
		}
		mm_block(j->dt, j->a + (offa + r0 * j->K) * esz, j->b + offb * esz,
		         j->c + (batch * j->M * j->N + r0 * j->N) * esz, r1 - r0, j->N, j->K);
	}
}

/* strides (in matrices) of t's batch dims [0, tb) against the output's
 * nbd batch dims; 0 where broadcast */
static int batch_strides(kiln_frame *f, const char *loc, int k, const rt_t *t, int tb,
                         const mm_job *j, int64_t mat, int64_t *st)
{
	int64_t s = mat;
	if (tb > j->nbd)
		return rt_error(f, "node '%s' (MatMul): input %d has more batch dims than the output",
		                loc, k);
	for (int d = j->nbd - 1; d >= 0; d--) {
		int dt = d - (j->nbd - tb);
		if (dt < 0) {
			st[d] = 0;
			continue;
		}
		int64_t n = t->dims[dt];
		if (n != j->bd[d] && n != 1)
			return rt_error(f, "node '%s' (MatMul): input %d dim %d is %lld, output %lld", loc,
			                k, dt, (long long)n, (long long)j->bd[d]);
		st[d] = n == 1 ? 0 : s;
		s *= n;
	}
	return 0;
}

RT_KERNEL(MatMul)
{
	const rt_t *A = &in[0], *B = &in[1];
	rt_t *C = &out[0];
	int32_t dt = A->dtype;
	if (B->dtype != dt || C->dtype != dt)
		return rt_error(f, "node '%s' (MatMul): dtypes %s x %s -> %s", loc, rt_dtype_name(dt),
		                rt_dtype_name(B->dtype), rt_dtype_name(C->dtype));
	if (dt != KILN_F32 && dt != KILN_F64 && dt != KILN_I32 && dt != KILN_I64)
		return rt_bad_dtype(f, loc, "MatMul", dt);
	if (A->rank < 1 || B->rank < 1)
		return rt_error(f, "node '%s' (MatMul): scalar operand", loc);
	bool a1 = A->rank == 1, b1 = B->rank == 1;
	mm_job j = { .dt = dt, .a = A->data, .b = B->data, .c = C->data, .esz = rt_dtype_size(dt) };
	j.M = a1 ? 1 : A->dims[A->rank - 2];
	j.K = A->dims[A->rank - 1];
	j.N = b1 ? 1 : B->dims[B->rank - 1];
	int64_t kb = b1 ? B->dims[0] : B->dims[B->rank - 2];
	if (kb != j.K)
		return rt_error(f, "node '%s' (MatMul): inner dims differ: %lld vs %lld", loc,
		                (long long)j.K, (long long)kb);
	j.nbd = C->rank - (a1 ? 0 : 1) - (b1 ? 0 : 1);
	if (j.nbd < 0 || (!a1 && C->dims[j.nbd] != j.M) || (!b1 && C->dims[C->rank - 1] != j.N))
		return rt_error(f, "node '%s' (MatMul): output shape does not match the inputs", loc);
	int64_t nbatch = 1;
	for (int d = 0; d < j.nbd; d++) {
		j.bd[d] = C->dims[d];
		nbatch *= j.bd[d];
	}
	if (batch_strides(f, loc, 0, A, a1 ? 0 : A->rank - 2, &j, j.M * j.K, j.as) ||
	    batch_strides(f, loc, 1, B, b1 ? 0 : B->rank - 2, &j, j.K * j.N, j.bs))
		return 1;
	/* fold: B shared by all batches and A dense over them -> one tall GEMM */
	bool fold = nbatch > 1;
	int64_t s = j.M * j.K;
	for (int d = j.nbd - 1; d >= 0 && fold; d--) {
		fold = j.bs[d] == 0 && j.as[d] == s;
		s *= j.bd[d];
	}
	if (fold) {
		j.M *= nbatch;
		nbatch = 1;
		j.nbd = 0;
	}
	if (nbatch == 0 || j.M == 0 || j.N == 0)
		return 0;
	if (dt == KILN_F32 && nbatch == 1) {     /* rt_sgemm splits it over the pool */
		rt_sgemm(f->pool, 0, 0, j.M, j.N, j.K, 1.0f, (const float *)j.a, j.K,
		         (const float *)j.b, j.N, 0.0f, (float *)j.c, j.N);
		return 0;
	}
	int T = rt_pool_size(f->pool);
	j.nrb = nbatch >= T ? 1 : (T + nbatch - 1) / nbatch;
	if (j.nrb > j.M)
		j.nrb = j.M;
	j.rows = (j.M + j.nrb - 1) / j.nrb;
	rt_par(f, nbatch * j.nrb, j.rows * j.N * (j.K + 1) / 4, mm_range, &j);
	return 0;
}

/* ---- Gemm ---- */

RT_KERNEL(Gemm)
{
	const rt_t *A = &in[0], *B = &in[1];
	rt_t *Y = &out[0];
	if (A->dtype != KILN_F32 || B->dtype != KILN_F32 || Y->dtype != KILN_F32)
		return rt_bad_dtype(f, loc, "Gemm", A->dtype != KILN_F32 ? A->dtype : B->dtype);
	if (A->rank != 2 || B->rank != 2 || Y->rank != 2)
		return rt_error(f, "node '%s' (Gemm): operands must be 2-D", loc);
	struct { int64_t M, N, K; bool ta, tb; float alpha, beta; } j = {
		.ta = nia > 0 && ia[0], .tb = nia > 1 && ia[1],
		.alpha = nfa > 0 ? fa[0] : 1.0f, .beta = nfa > 1 ? fa[1] : 1.0f };
	j.M = j.ta ? A->dims[1] : A->dims[0];
	j.K = j.ta ? A->dims[0] : A->dims[1];
	int64_t kb = j.tb ? B->dims[1] : B->dims[0];
	j.N = j.tb ? B->dims[0] : B->dims[1];
	if (kb != j.K || Y->dims[0] != j.M || Y->dims[1] != j.N)
		return rt_error(f, "node '%s' (Gemm): shapes (%lld x %lld) * (%lld x %lld) -> "
		                "(%lld x %lld) do not match", loc, (long long)j.M, (long long)j.K,
		                (long long)kb, (long long)j.N, (long long)Y->dims[0],
		                (long long)Y->dims[1]);
	float *y = Y->data;
	bool hasc = nin > 2 && in[2].data && j.beta != 0.0f;
	if (hasc) {
		int64_t st[2];
		if (in[2].dtype != KILN_F32)
			return rt_bad_dtype(f, loc, "Gemm", in[2].dtype);
		if (rt_bcast_strides(f, loc, "Gemm", 2, &in[2], Y, st))
			return 1;
		const float *c = in[2].data;
		for (int64_t i = 0; i < j.M; i++)
			for (int64_t k = 0; k < j.N; k++)
				y[i * j.N + k] = c[i * st[0] + k * st[1]];
	}
	if (j.M == 0 || j.N == 0)
		return 0;
	if (j.K == 0) {
		for (int64_t i = 0; i < j.M * j.N; i++)
			y[i] = hasc ? y[i] * j.beta : 0.0f;
		return 0;
	}
	if (!hasc)
		j.beta = 0.0f;
	rt_sgemm(f->pool, j.ta, j.tb, j.M, j.N, j.K, j.alpha, A->data, A->dims[1], B->data,
	         B->dims[1], j.beta, y, j.N);
	return 0;
}

/* ---- Einsum: a loop nest over every label ---- */

#define EIN_LABELS 64          /* 52 letters + up to KILN_MAX_RANK ellipsis dims */

typedef struct ein_job {
	int nin;
	int32_t dt;
	const char *x[16];
	char *y;
	int nout, ncon;             /* output labels, contracted labels */
	int64_t od[KILN_MAX_RANK], cd[EIN_LABELS];
	int64_t ost[16][KILN_MAX_RANK], cst[16][EIN_LABELS];   /* element strides */
} ein_job;

static void ein_range(void *arg, int64_t b, int64_t e)
{
	const ein_job *j = arg;
	int64_t ncomb = 1;
	for (int c = 0; c < j->ncon; c++)
		ncomb *= j->cd[c];
	for (int64_t o = b; o < e; o++) {
		int64_t base[16] = {0}, rem = o;
		for (int d = j->nout - 1; d >= 0; d--) {
			int64_t i = rem % j->od[d];
			rem /= j->od[d];
			for (int k = 0; k < j->nin; k++)
				base[k] += i * j->ost[k][d];
		}
		double sum = 0;
		int64_t idx[EIN_LABELS] = {0}, off[16];
		for (int k = 0; k < j->nin; k++)
			off[k] = base[k];
		for (int64_t t = 0; t < ncomb; t++) {
			double p = 1;
			for (int k = 0; k < j->nin; k++)
				p *= j->dt == KILN_F32 ? (double)((const float *)j->x[k])[off[k]]
				                       : ((const double *)j->x[k])[off[k]];
			sum += p;
			for (int c = j->ncon - 1; c >= 0; c--) {   /* odometer, offsets follow */
				for (int k = 0; k < j->nin; k++)
					off[k] += j->cst[k][c];
				if (++idx[c] < j->cd[c])
					break;
				for (int k = 0; k < j->nin; k++)
					off[k] -= j->cst[k][c] * j->cd[c];
				idx[c] = 0;
			}
		}
		if (j->dt == KILN_F32)
			((float *)j->y)[o] = (float)sum;
		else
			((double *)j->y)[o] = sum;
	}
}

static int label_of(char ch)
{
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a';
	if (ch >= 'A' && ch <= 'Z')
		return 26 + ch - 'A';
	return -1;
}

/* Parse one term into labels; "..." expands to the ellipsis labels of an
 * operand of the given rank (right-aligned among nell).  Returns count or -1. */
static int parse_term(const char *s, int len, int rank, int nell, int *lab)
{
	int nletters = 0, n = 0;
	bool ell = false;
	for (int i = 0; i < len; i++)
		if (label_of(s[i]) >= 0)
			nletters++;
	int my_ell = rank < 0 ? nell : rank - nletters;
	for (int i = 0; i < len; i++) {
		if (s[i] == ' ')
			continue;
		if (s[i] == '.') {
			if (ell || i + 2 >= len + 0 || s[i + 1] != '.' || s[i + 2] != '.' || my_ell < 0 ||
			    my_ell > nell)
				return -1;
			ell = true;
			for (int e = nell - my_ell; e < nell; e++)
				lab[n++] = 52 + e;
			i += 2;
			continue;
		}
		int l = label_of(s[i]);
		if (l < 0 || n >= KILN_MAX_RANK)
			return -1;
		lab[n++] = l;
	}
	if (rank >= 0 && n != rank)
		return -1;
	return n;
}

RT_KERNEL(Einsum)
{
	char eq[256];
	if (nia < 0 || nia >= (int32_t)sizeof eq || nin > 16)   /* "" is a scalar's equation */
		return rt_error(f, "node '%s' (Einsum): bad equation or too many inputs", loc);
	for (int i = 0; i < nia; i++)
		eq[i] = (char)ia[i];
	eq[nia] = 0;
	int32_t dt = out[0].dtype;
	if (dt != KILN_F32 && dt != KILN_F64)
		return rt_bad_dtype(f, loc, "Einsum", dt);
	const char *arrow = strstr(eq, "->");
	int lhs_len = arrow ? (int)(arrow - eq) : nia;
	/* split the operand terms */
	const char *term[16];
	int tlen[16], nt = 0, nell = 0;
	for (const char *p = eq; nt < 16;) {
		const char *comma = memchr(p, ',', (size_t)(eq + lhs_len - p));
		term[nt] = p;
		tlen[nt] = comma ? (int)(comma - p) : (int)(eq + lhs_len - p);
		nt++;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (nt != nin)
		return rt_error(f, "node '%s' (Einsum): equation '%s' has %d operands, node %d", loc,
		                eq, nt, nin);
	for (int k = 0; k < nin; k++) {
		int nl = 0;
		for (int i = 0; i < tlen[k]; i++)
			nl += label_of(term[k][i]) >= 0;
		if (memchr(term[k], '.', (size_t)tlen[k]) && in[k].rank - nl > nell)
			nell = in[k].rank - nl;
		if (in[k].dtype != dt)
			return rt_bad_dtype(f, loc, "Einsum", in[k].dtype);
	}
	int lab[16][KILN_MAX_RANK], nlab[16], olab[KILN_MAX_RANK], no;
	int64_t size[EIN_LABELS];
	int count[EIN_LABELS] = {0};
	for (int l = 0; l < EIN_LABELS; l++)
		size[l] = -1;
	for (int k = 0; k < nin; k++) {
		nlab[k] = parse_term(term[k], tlen[k], in[k].rank, nell, lab[k]);
		if (nlab[k] < 0)
			return rt_error(f, "node '%s' (Einsum): term %d of '%s' does not match rank %d",
			                loc, k, eq, in[k].rank);
		for (int d = 0; d < nlab[k]; d++) {
			int l = lab[k][d];
			int64_t n = in[k].dims[d];
			count[l]++;
			if (size[l] < 0 || size[l] == 1)
				size[l] = n;
			else if (n != size[l] && n != 1)   /* size 1 broadcasts, as numpy's einsum */
				return rt_error(f, "node '%s' (Einsum): label '%c' is %lld and %lld", loc,
				                l < 26 ? 'a' + l : l < 52 ? 'A' + l - 26 : '.',
				                (long long)size[l], (long long)n);
		}
	}
	if (arrow) {
		no = parse_term(arrow + 2, (int)strlen(arrow + 2), -1, nell, olab);
		if (no < 0)
			return rt_error(f, "node '%s' (Einsum): bad output term in '%s'", loc, eq);
	} else {                  /* implicit: ellipsis, then letters seen once, sorted */
		no = 0;
		for (int e = 0; e < nell; e++)
			olab[no++] = 52 + e;
		for (int l = 0; l < 52 && no < KILN_MAX_RANK; l++)
			if (count[l] == 1)
				olab[no++] = l;
	}
	if (no != out[0].rank)
		return rt_error(f, "node '%s' (Einsum): output rank %d, equation gives %d", loc,
		                out[0].rank, no);
	ein_job j = { .nin = nin, .dt = dt, .y = out[0].data, .nout = no };
	bool is_out[EIN_LABELS] = {0};
	for (int d = 0; d < no; d++) {
		if (size[olab[d]] < 0 || out[0].dims[d] != size[olab[d]])
			return rt_error(f, "node '%s' (Einsum): output dim %d is %lld, equation gives %lld",
			                loc, d, (long long)out[0].dims[d], (long long)size[olab[d]]);
		j.od[d] = size[olab[d]];
		is_out[olab[d]] = true;
	}
	int con[EIN_LABELS];
	for (int l = 0; l < EIN_LABELS; l++)
		if (size[l] >= 0 && !is_out[l]) {
			con[j.ncon] = l;
			j.cd[j.ncon++] = size[l];
		}
	for (int k = 0; k < nin; k++) {
		j.x[k] = in[k].data;
		int64_t st[KILN_MAX_RANK], s = 1;
		for (int d = in[k].rank - 1; d >= 0; d--) {
			st[d] = in[k].dims[d] == 1 ? 0 : s;     /* size 1: broadcast */
			s *= in[k].dims[d];
		}
		for (int d = 0; d < no; d++)
			for (int e = 0; e < nlab[k]; e++)
				if (lab[k][e] == olab[d])
					j.ost[k][d] += st[e];
		for (int c = 0; c < j.ncon; c++)
			for (int e = 0; e < nlab[k]; e++)
				if (lab[k][e] == con[c])
					j.cst[k][c] += st[e];
	}
	int64_t total = rt_numel(&out[0]), ncomb = 1;
	for (int c = 0; c < j.ncon; c++)
		ncomb *= j.cd[c];
	if (total == 0)
		return 0;
	rt_par(f, total, ncomb * nin + 1, ein_range, &j);
	return 0;
}

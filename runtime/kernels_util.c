/* kernels_util.c: what the kernel families share: dtype sizes and
 * conversions, numpy broadcasting (strides, checks, an elementwise driver
 * over up to 3 inputs) and a strided copy (Transpose, Slice, Expand). */
#include <math.h>
#include <string.h>

#include "rt_internal.h"

size_t rt_dtype_size(int32_t dt)
{
	switch (dt) {
	case KILN_U8: case KILN_I8: case KILN_BOOL: return 1;
	case KILN_U16: case KILN_I16: case KILN_F16: case KILN_BF16: return 2;
	case KILN_F32: case KILN_I32: case KILN_U32: return 4;
	case KILN_F64: case KILN_I64: case KILN_U64: return 8;
	default: return 0;
	}
}

const char *rt_dtype_name(int32_t dt)
{
	switch (dt) {
	case KILN_F32: return "f32";
	case KILN_U8: return "u8";
	case KILN_I8: return "i8";
	case KILN_U16: return "u16";
	case KILN_I16: return "i16";
	case KILN_I32: return "i32";
	case KILN_I64: return "i64";
	case KILN_BOOL: return "bool";
	case KILN_F16: return "f16";
	case KILN_F64: return "f64";
	case KILN_U32: return "u32";
	case KILN_U64: return "u64";
	case KILN_BF16: return "bf16";
	default: return "unknown";
	}
}

bool rt_is_float(int32_t dt)
{
	return dt == KILN_F32 || dt == KILN_F64 || dt == KILN_F16 || dt == KILN_BF16;
}

int64_t rt_numel(const rt_t *t)
{
	int64_t n = 1;
	for (int k = 0; k < t->rank; k++)
		n *= t->dims[k];
	return n;
}

int rt_bad_dtype(kiln_frame *f, const char *loc, const char *op, int32_t dt)
{
	return rt_error(f, "node '%s' (%s): dtype %s not supported", loc, op, rt_dtype_name(dt));
}

float rt_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
	if (exp == 0) {
		float v = ldexpf((float)man, -24);        /* zero and subnormals */
		return sign ? -v : v;
	}
	if (exp == 31)
		bits = sign | 0x7f800000u | (man << 13);
	else
		bits = sign | ((exp + 112) << 23) | (man << 13);
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

uint16_t rt_f32_to_f16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
	uint32_t ax = x & 0x7fffffffu;
	if (ax >= 0x7f800000u)                        /* inf, nan */
		return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0);
	if (ax >= 0x477ff000u)                        /* rounds to >= 65520: inf */
		return sign | 0x7c00;
	if (ax < 0x38800000u) {                       /* subnormal half: round via float add */
		float a;
		memcpy(&a, &ax, 4);
		a += 0.5f;                                /* ulp of 0.5 is 2^-24 */
		uint32_t b;
		memcpy(&b, &a, 4);
		return sign | (uint16_t)(b - 0x3f000000u);
	}
	uint32_t mant_odd = (ax >> 13) & 1;
	ax += 0xc8000fffu + mant_odd;                 /* rebias exponent, round to even */
	return sign | (uint16_t)(ax >> 13);
}

float rt_bf16_to_f32(uint16_t h)
{
	uint32_t bits = (uint32_t)h << 16;
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

int64_t rt_get_i64(const void *p, int32_t dt, int64_t i)
{
	switch (dt) {
	case KILN_I64: return ((const int64_t *)p)[i];
	case KILN_I32: return ((const int32_t *)p)[i];
	case KILN_I16: return ((const int16_t *)p)[i];
	case KILN_I8: return ((const int8_t *)p)[i];
	case KILN_U8: case KILN_BOOL: return ((const uint8_t *)p)[i];
	case KILN_U16: return ((const uint16_t *)p)[i];
	case KILN_U32: return ((const uint32_t *)p)[i];
	case KILN_U64: return (int64_t)((const uint64_t *)p)[i];
	case KILN_F32: case KILN_F64: case KILN_F16: case KILN_BF16: {
		double v = rt_get_f64(p, dt, i);
		if (!(v == v))
			return 0;
		return v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (int64_t)v;
	}
	default: return 0;
	}
}

double rt_get_f64(const void *p, int32_t dt, int64_t i)
{
	switch (dt) {
	case KILN_F32: return ((const float *)p)[i];
	case KILN_F64: return ((const double *)p)[i];
	case KILN_F16: return rt_f16_to_f32(((const uint16_t *)p)[i]);
	case KILN_BF16: return rt_bf16_to_f32(((const uint16_t *)p)[i]);
	case KILN_U64: return (double)((const uint64_t *)p)[i];
	default: return (double)rt_get_i64(p, dt, i);
	}
}

static int64_t sat_i64(double v, double lo, double hi)
{
	if (!(v == v))
		return 0;
	return v <= lo ? (int64_t)lo : v >= hi ? (int64_t)hi : (int64_t)v;
}

void rt_set_f64(void *p, int32_t dt, int64_t i, double v)
{
	switch (dt) {
	case KILN_F32: ((float *)p)[i] = (float)v; break;
	case KILN_F64: ((double *)p)[i] = v; break;
	case KILN_F16: ((uint16_t *)p)[i] = rt_f32_to_f16((float)v); break;
	case KILN_BF16: ((uint16_t *)p)[i] = rt_f32_to_bf16((float)v); break;
	case KILN_I64: ((int64_t *)p)[i] = sat_i64(v, -9.2e18, 9.2e18); break;
	case KILN_I32: ((int32_t *)p)[i] = (int32_t)sat_i64(v, INT32_MIN, INT32_MAX); break;
	case KILN_I16: ((int16_t *)p)[i] = (int16_t)sat_i64(v, INT16_MIN, INT16_MAX); break;
	case KILN_I8: ((int8_t *)p)[i] = (int8_t)sat_i64(v, INT8_MIN, INT8_MAX); break;
	case KILN_U8: ((uint8_t *)p)[i] = (uint8_t)sat_i64(v, 0, UINT8_MAX); break;
	case KILN_U16: ((uint16_t *)p)[i] = (uint16_t)sat_i64(v, 0, UINT16_MAX); break;
	case KILN_U32: ((uint32_t *)p)[i] = (uint32_t)sat_i64(v, 0, UINT32_MAX); break;
	case KILN_U64: ((uint64_t *)p)[i] = (uint64_t)sat_i64(v, 0, 9.2e18); break;
	case KILN_BOOL: ((uint8_t *)p)[i] = v != 0; break;
	default: break;
	}
}

int rt_bcast_strides(kiln_frame *f, const char *loc, const char *op, int k,
                     const rt_t *in, const rt_t *out, int64_t *strides)
{
	int r = out->rank, ri = in->rank;
	if (ri > r)
		return rt_error(f, "node '%s' (%s): input %d has rank %d, output %d", loc, op, k, ri, r);
	int64_t s = 1;
	for (int d = r - 1; d >= 0; d--) {
		int di = d - (r - ri);
		if (di < 0) {
			strides[d] = 0;
			continue;
		}
		int64_t n = in->dims[di];
		if (n != out->dims[d] && n != 1)
			return rt_error(f, "node '%s' (%s): input %d dim %d is %lld, output %lld", loc, op,
			                k, di, (long long)n, (long long)out->dims[d]);
		strides[d] = n == 1 ? 0 : s;
		s *= n;
	}
	return 0;
}

/* ---- elementwise driver ------------------------------------------------- */

typedef struct ew_job {
	int nins, rank;                 /* collapsed rank, >= 1 */
	int64_t dims[KILN_MAX_RANK];
	int64_t st[3][KILN_MAX_RANK];   /* element strides per input */
	const char *base[3];
	size_t esz[3], osz;
	char *out;
	rt_inner_fn inner;
	const void *aux;
} ew_job;

/* Flat output range [b, e): rows of the innermost dim, cut at the ends. */
static void ew_range(void *arg, int64_t b, int64_t e)
{
	ew_job *j = arg;
	int r = j->rank;
	int64_t inner = j->dims[r - 1], idx[KILN_MAX_RANK];
	int64_t rem = b;
	for (int d = r - 1; d >= 0; d--) {
		idx[d] = rem % j->dims[d];
		rem /= j->dims[d];
	}
	int64_t pos = b;
	while (pos < e) {
		int64_t n = inner - idx[r - 1];
		if (n > e - pos)
			n = e - pos;
		const void *p[3];
		int64_t s[3];
		for (int k = 0; k < j->nins; k++) {
			int64_t off = 0;
			for (int d = 0; d < r; d++)
				off += idx[d] * j->st[k][d];
			p[k] = j->base[k] + off * (int64_t)j->esz[k];
			s[k] = j->st[k][r - 1];
		}
		j->inner(p, s, j->out + pos * (int64_t)j->osz, n, j->aux);
		pos += n;
		idx[r - 1] += n;
		for (int d = r - 1; d > 0 && idx[d] >= j->dims[d]; d--) {
			idx[d] = 0;
			idx[d - 1]++;
		}
	}
}

int rt_elementwise(kiln_frame *f, const char *loc, const char *op,
                   const rt_t *const *ins, int nins, rt_t *out, rt_inner_fn inner,
                   const void *aux)
{
	ew_job j = { .nins = nins, .inner = inner, .aux = aux, .out = out->data,
	             .osz = rt_dtype_size(out->dtype) };
	int64_t st[3][KILN_MAX_RANK];
	for (int k = 0; k < nins; k++) {
		if (rt_bcast_strides(f, loc, op, k, ins[k], out, st[k]))
			return 1;
		j.base[k] = ins[k]->data;
		j.esz[k] = rt_dtype_size(ins[k]->dtype);
	}
	int64_t total = rt_numel(out);
	if (total == 0)
		return 0;
	/* collapse: drop size-1 dims, merge d into the previous kept dim when
	 * every input's strides are contiguous across the two */
	int r = 0;
	for (int d = 0; d < out->rank; d++) {
		if (out->dims[d] == 1)
			continue;
		bool merge = r > 0;
		for (int k = 0; k < nins && merge; k++)
			merge = st[k][d] * out->dims[d] == j.st[k][r - 1] ||
			        (st[k][d] == 0 && j.st[k][r - 1] == 0);
		if (merge && r > 0) {
			for (int k = 0; k < nins; k++)
				j.st[k][r - 1] = st[k][d];
			j.dims[r - 1] *= out->dims[d];
			continue;
		}
		j.dims[r] = out->dims[d];
		for (int k = 0; k < nins; k++)
			j.st[k][r] = st[k][d];
		r++;
	}
	if (r == 0) {
		j.dims[0] = 1;
		for (int k = 0; k < nins; k++)
			j.st[k][0] = 0;
		r = 1;
	}
	j.rank = r;
	rt_par(f, total, 2, ew_range, &j);
	return 0;
}

/* ---- strided copy ------------------------------------------------------- */

typedef struct sc_job {
	int rank;
	int64_t dims[KILN_MAX_RANK], st[KILN_MAX_RANK];
	const char *src;
	char *dst;
	size_t esz;
} sc_job;

#define SC_ROW(T) do { \
	const T *s_ = (const T *)sp; T *d_ = (T *)dp; \
	if (stride == 1) memcpy(d_, s_, (size_t)n * sizeof(T)); \
	else if (stride == 0) for (int64_t i = 0; i < n; i++) d_[i] = s_[0]; \
	else for (int64_t i = 0; i < n; i++) d_[i] = s_[i * stride]; \
} while (0)

static void sc_row(const char *sp, int64_t stride, char *dp, int64_t n, size_t esz)
{
	switch (esz) {
	case 1: SC_ROW(uint8_t); break;
	case 2: SC_ROW(uint16_t); break;
	case 4: SC_ROW(uint32_t); break;
	case 8: SC_ROW(uint64_t); break;
	default:
		for (int64_t i = 0; i < n; i++)
			memcpy(dp + i * (int64_t)esz, sp + i * stride * (int64_t)esz, esz);
	}
}

/* rows [b, e) of the output (all dims but the last) */
static void sc_range(void *arg, int64_t b, int64_t e)
{
	sc_job *j = arg;
	int r = j->rank;
	int64_t inner = j->dims[r - 1], idx[KILN_MAX_RANK] = {0};
	int64_t rem = b;
	for (int d = r - 2; d >= 0; d--) {
		idx[d] = rem % j->dims[d];
		rem /= j->dims[d];
	}
	for (int64_t row = b; row < e; row++) {
		int64_t off = 0;
		for (int d = 0; d < r - 1; d++)
			off += idx[d] * j->st[d];
		sc_row(j->src + off * (int64_t)j->esz, j->st[r - 1],
		       j->dst + row * inner * (int64_t)j->esz, inner, j->esz);
		for (int d = r - 2; d >= 0; d--) {
			if (++idx[d] < j->dims[d])
				break;
			idx[d] = 0;
		}
	}
}

void rt_strided_copy(kiln_frame *f, size_t esize, int rank, const int64_t *dims,
                     const void *src, const int64_t *sstride, void *dst)
{
	sc_job j = { .src = src, .dst = dst, .esz = esize };
	int64_t total = 1;
	for (int d = 0; d < rank; d++)
		total *= dims[d];
	if (total == 0)
		return;
	int r = 0;
	for (int d = 0; d < rank; d++) {
		if (dims[d] == 1)
			continue;
		if (r > 0 && j.st[r - 1] == sstride[d] * dims[d]) {
			j.dims[r - 1] *= dims[d];
			j.st[r - 1] = sstride[d];
			continue;
		}
		j.dims[r] = dims[d];
		j.st[r] = sstride[d];
		r++;
	}
	if (r == 0) {
		j.dims[0] = 1;
		j.st[0] = 1;
		r = 1;
	}
	j.rank = r;
	int64_t rows = total / j.dims[r - 1];
	rt_par(f, rows, j.dims[r - 1], sc_range, &j);
}

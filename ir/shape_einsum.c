/* Shape inference of Einsum: parses the equation ("bind,bjnd->bnij",
 * with "..." and the implicit-output form) and gives each output letter
 * the dim its inputs agree on; "..." dims broadcast across inputs. */
#include <ctype.h>
#include <string.h>

#include "ir.h"
#include "shape_internal.h"

#define EIN_MAX_IN 8

typedef struct Term {
	char let[IR_MAX_RANK + 1];
	int nlet;
	int ell;          /* position of "..." among the letters, -1 if none */
} Term;

/* Parses one term from *p up to ',', '-' or end. */
static int parse_term(Sh *s, const char **pp, Term *t)
{
	const char *p = *pp;
	t->nlet = 0;
	t->ell = -1;
	for (;;) {
		while (*p == ' ')
			p++;
		if (isalpha((unsigned char)*p)) {
			if (t->nlet >= IR_MAX_RANK)
				return ir_shp_fail(s, "equation term has too many letters");
			t->let[t->nlet++] = *p++;
		} else if (p[0] == '.' && p[1] == '.' && p[2] == '.') {
			if (t->ell >= 0)
				return ir_shp_fail(s, "two ellipses in one term");
			t->ell = t->nlet;
			p += 3;
		} else {
			break;
		}
	}
	*pp = p;
	return 0;
}

int ir_shp_einsum(Sh *s)
{
	const char *eq = ir_attr_str(s->g, s->id, "equation", NULL);
	int nin = SH_NODE(s)->nin;
	if (!eq)
		return ir_shp_fail(s, "no equation");
	if (nin > EIN_MAX_IN)
		return ir_shp_fail(s, "more than %d inputs", EIN_MAX_IN);
	Term in[EIN_MAX_IN], out;
	const char *p = eq;
	int n = 0;
	for (;;) {
		if (n >= nin)
			return ir_shp_fail(s, "equation '%s' has more terms than the %d inputs", eq, nin);
		if (parse_term(s, &p, &in[n++]))
			return -1;
		while (*p == ' ')
			p++;
		if (*p != ',')
			break;
		p++;
	}
	if (n != nin)
		return ir_shp_fail(s, "equation '%s' has %d terms for %d inputs", eq, n, nin);
	bool explicit_out = false;
	if (p[0] == '-' && p[1] == '>') {
		p += 2;
		explicit_out = true;
		if (parse_term(s, &p, &out))
			return -1;
	}
	while (*p == ' ')
		p++;
	if (*p)
		return ir_shp_fail(s, "bad character '%c' in equation '%s'", *p, eq);

	DimId dim[128];
	int count[128] = { 0 };
	DimId ell[IR_MAX_RANK];
	int nell = 0;
	DType t = DT_UNDEF;
	for (int i = 0; i < nin; i++) {
		const Value *v;
		if (ir_shp_need(s, i, &v))
			return -1;
		if (i == 0)
			t = v->dtype;
		int ne = v->rank - in[i].nlet;
		if (ne < 0 || (ne > 0 && in[i].ell < 0))
			return ir_shp_fail(s, "term %d of '%s' does not match input '%s' of rank %d", i, eq,
			                   ir_shp_inname(s, i), v->rank);
		int k = 0;
		for (int j = 0; j < in[i].nlet; j++) {
			if (j == in[i].ell)
				k += ne;
			int c = in[i].let[j];
			if (count[c]++ == 0)
				dim[c] = v->dims[k];
			else {   /* size 1 broadcasts, as numpy's einsum and ONNX Runtime */
				DimId b;
				int r;
				int64_t x, y;
				if (ir_dim_is_const(s->g, dim[c], &x) && ir_dim_is_const(s->g, v->dims[k], &y) &&
				    x != y && x != 1 && y != 1)
					return ir_shp_fail(s, "equation letter '%c' is %lld and %lld in '%s'", c,
					                   (long long)x, (long long)y, eq);
				if (ir_shp_bcast(s, 1, &dim[c], 1, &v->dims[k], &r, &b))
					return -1;
				dim[c] = b;
			}
			k++;
		}
		if (in[i].ell >= 0) {
			DimId tmp[IR_MAX_RANK];
			int r;
			if (ir_shp_bcast(s, nell, ell, ne, v->dims + in[i].ell, &r, tmp))
				return -1;
			memcpy(ell, tmp, sizeof(DimId) * (size_t)r);
			nell = r;
		}
	}
	if (!explicit_out) {   /* implicit: "..." then letters seen once, sorted */
		out.nlet = 0;
		out.ell = nell > 0 ? 0 : -1;
		for (int c = 0; c < 128; c++)
			if (count[c] == 1 && out.nlet < IR_MAX_RANK)
				out.let[out.nlet++] = (char)c;
	}
	DimId od[IR_MAX_RANK * 2];
	int r = 0;
	for (int j = 0; j <= out.nlet; j++) {
		if (j == out.ell)
			for (int e = 0; e < nell; e++)
				od[r++] = ell[e];
		if (j == out.nlet)
			break;
		int c = out.let[j];
		if (!count[c])
			return ir_shp_fail(s, "output letter '%c' of '%s' is not in any input", c, eq);
		od[r++] = dim[c];
	}
	if (r > IR_MAX_RANK)
		return ir_shp_fail(s, "result rank %d exceeds %d", r, IR_MAX_RANK);
	ir_shp_out(s, 0, t, r, od);
	return 0;
}

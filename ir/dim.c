/* Symbolic dims: hash-consed integer expressions over named symbols.
 *
 * Canonical form.  Every dim is one of
 *   - a constant,
 *   - an atom: a symbol, or an opaque floor-div / mod / max / min of two
 *     canonical dims,
 *   - a polynomial: a sum of terms coef * a1 * a2 * ... (atoms, repeated for
 *     powers) with integer coefficients, at least two terms or one term that
 *     is not a bare atom or constant.
 * Factors inside a term are sorted by a structural order on atoms (symbols
 * by name, then opaque atoms by their operands), and terms by a graded
 * lexicographic monomial order (higher degree first, the constant last).
 * The order depends on structure only, never on interning order, so the
 * printed form of a dim is the same in every graph.  Each canonical form is
 * serialized to an int64 key and interned in a hash table: equal
 * expressions get equal DimIds.
 *
 * Division divides polynomials exactly when it can (long division in the
 * graded order: (b*s*64)//(b*s*4) == 16); otherwise the common integer
 * content is cancelled and the result is an opaque floor-div atom.
 * max/min fold when the difference of the operands has a provable sign
 * (dims are non-negative: symbols are, and so are polynomials with
 * non-negative coefficients over non-negative atoms).
 *
 * Coefficient arithmetic wraps on overflow (no UB); dims that large are
 * meaningless anyway, and max/min refuse to fold when it happened.
 *
 * Tree view (ir_dim_node): a polynomial of n terms is ADD(first n-1 terms,
 * last term), a term is MUL(term without its last factor, last factor) with
 * the coefficient as the first factor, so every subtree is itself a DimId.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "dim_internal.h"

enum Form { F_CONST, F_SYM, F_DIV, F_MOD, F_MAX, F_MIN, F_POLY };

/* One interned dim.  key: F_CONST: [form, c]; F_SYM: [form, symid];
 * atoms: [form, a, b]; F_POLY: [form, nterms, (coef, nf, f1..fnf)*]. */
typedef struct Ent {
	DimNode node;
	uint8_t form;
	int32_t depth;        /* bound on the tree view's depth (ir_dim_depth) */
	int32_t nkey;
	int64_t *key;
	uint64_t hash;
} Ent;

struct DimTab {
	Ent *ents;
	int32_t n, cap;
	int32_t *ht;          /* open addressing, -1 = empty */
	int32_t htcap;
	char **syms;
	bool *symdyn;         /* per symbol: data-dependent (ir_dim_dyn) */
	int32_t nsyms, capsyms;
	int32_t *symht;       /* symbols by name, open addressing, -1 = empty: a
	                       * model with 20,000 symbolic inputs spent seconds
	                       * in a linear search */
	int32_t symhtcap;     /* 0 or a power of two, over twice nsyms */
	bool ovf;             /* set by wrapping arithmetic when it overflowed */
};

/* ---- table -------------------------------------------------------------- */

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		abort();
	return q;
}

struct DimTab *ir_dimtab_new(void)
{
	struct DimTab *t = calloc(1, sizeof *t);
	if (!t)
		abort();
	t->htcap = 256;
	t->ht = xrealloc(NULL, sizeof(int32_t) * (size_t)t->htcap);
	memset(t->ht, -1, sizeof(int32_t) * (size_t)t->htcap);
	return t;
}

void ir_dimtab_free(struct DimTab *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->n; i++)
		free(t->ents[i].key);
	for (int i = 0; i < t->nsyms; i++)
		free(t->syms[i]);
	free(t->ents);
	free(t->ht);
	free(t->syms);
	free(t->symdyn);
	free(t->symht);
	free(t);
}

static uint64_t key_hash(const int64_t *k, int n)
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < n; i++) {
		h ^= (uint64_t)k[i];
		h *= 1099511628211ull;
		h ^= h >> 29;
	}
	return h;
}

static void ht_grow(struct DimTab *t)
{
	free(t->ht);
	t->htcap *= 2;
	t->ht = xrealloc(NULL, sizeof(int32_t) * (size_t)t->htcap);
	memset(t->ht, -1, sizeof(int32_t) * (size_t)t->htcap);
	for (int i = 0; i < t->n; i++) {
		uint32_t m = (uint32_t)t->htcap - 1, j = (uint32_t)t->ents[i].hash & m;
		while (t->ht[j] >= 0)
			j = (j + 1) & m;
		t->ht[j] = i;
	}
}

/* Returns the id of key, or -1 and the slot where it would go. */
static DimId ht_find(const struct DimTab *t, const int64_t *key, int nkey, uint64_t h)
{
	uint32_t m = (uint32_t)t->htcap - 1, j = (uint32_t)h & m;
	for (; t->ht[j] >= 0; j = (j + 1) & m) {
		const Ent *e = &t->ents[t->ht[j]];
		if (e->hash == h && e->nkey == nkey && !memcmp(e->key, key, sizeof(int64_t) * (size_t)nkey))
			return t->ht[j];
	}
	return -1;
}

/* Depth of the tree view of a new key (see the top comment), bounded
 * above: 1 for constants and symbols, 1 + the deeper operand for atoms,
 * for a polynomial its ADD spine (terms - 1) plus its deepest term (the
 * MUL spine of coefficient and factors, plus the deepest factor). */
static int32_t key_depth(const struct DimTab *t, const int64_t *key, int nkey)
{
	int64_t d = 1;
	switch (key[0]) {
	case F_DIV: case F_MOD: case F_MAX: case F_MIN: {
		int32_t a = t->ents[key[1]].depth, b = t->ents[key[2]].depth;
		d = 1 + (int64_t)(a > b ? a : b);
		break;
	}
	case F_POLY: {
		int64_t deepest = 0;
		for (int i = 2; i + 1 < nkey;) {
			int64_t nf = key[i + 1], fd = 0;
			for (int64_t j = 0; j < nf && i + 2 + j < nkey; j++)
				if (t->ents[key[i + 2 + j]].depth > fd)
					fd = t->ents[key[i + 2 + j]].depth;
			if (nf + fd > deepest)
				deepest = nf + fd;
			i += 2 + (int)nf;
		}
		d = key[1] - 1 + deepest;
		break;
	}
	default:
		break;
	}
	return d > INT32_MAX ? INT32_MAX : (int32_t)d;
}

/* Interns key; node is used only when the key is new. */
static DimId intern(struct DimTab *t, const int64_t *key, int nkey, DimNode node)
{
	uint64_t h = key_hash(key, nkey);
	DimId id = ht_find(t, key, nkey, h);
	if (id >= 0)
		return id;
	if ((t->n + 1) * 2 > t->htcap)
		ht_grow(t);
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->ents = xrealloc(t->ents, sizeof(Ent) * (size_t)t->cap);
	}
	Ent *e = &t->ents[t->n];
	e->depth = key_depth(t, key, nkey);
	e->node = node;
	e->form = (uint8_t)key[0];
	e->nkey = nkey;
	e->key = xrealloc(NULL, sizeof(int64_t) * (size_t)nkey);
	memcpy(e->key, key, sizeof(int64_t) * (size_t)nkey);
	e->hash = h;
	uint32_t m = (uint32_t)t->htcap - 1, j = (uint32_t)h & m;
	while (t->ht[j] >= 0)
		j = (j + 1) & m;
	t->ht[j] = t->n;
	return t->n++;
}

static const Ent *ent(const struct DimTab *t, DimId d)
{
	if (d < 0 || d >= t->n)
		return NULL;
	return &t->ents[d];
}

/* ---- wrapping arithmetic ---------------------------------------------- */

static int64_t wadd(struct DimTab *t, int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		t->ovf = true;
	return r;
}

static int64_t wmul(struct DimTab *t, int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_mul_overflow(a, b, &r))
		t->ovf = true;
	return r;
}

static int64_t floordiv(int64_t a, int64_t b)
{
	if (b == -1)
		return (int64_t)(0 - (uint64_t)a);
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static int64_t floormod(int64_t a, int64_t b)
{
	if (b == -1)
		return 0;
	int64_t r = a % b;
	if (r != 0 && ((r < 0) != (b < 0)))
		r += b;
	return r;
}

static int64_t gcd64(int64_t a, int64_t b)
{
	uint64_t x = a < 0 ? 0 - (uint64_t)a : (uint64_t)a;
	uint64_t y = b < 0 ? 0 - (uint64_t)b : (uint64_t)b;
	while (y) {
		uint64_t r = x % y;
		x = y;
		y = r;
	}
	return x > INT64_MAX ? 1 : (int64_t)x;
}

/* ---- structural order ------------------------------------------------- */

static int cmp_dim(const struct DimTab *t, DimId x, DimId y);

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

/* Graded order of monomials: higher degree first, then factorwise. */
static int cmp_mono(const struct DimTab *t, const int64_t *fa, int na, const int64_t *fb, int nb)
{
	if (na != nb)
		return na > nb ? -1 : 1;
	for (int i = 0; i < na; i++) {
		int c = cmp_dim(t, (DimId)fa[i], (DimId)fb[i]);
		if (c)
			return c;
	}
	return 0;
}

static int cmp_dim(const struct DimTab *t, DimId x, DimId y)
{
	if (x == y)
		return 0;
	const Ent *a = &t->ents[x], *b = &t->ents[y];
	if (a->form != b->form)
		return a->form < b->form ? -1 : 1;
	switch (a->form) {
	case F_CONST:
		return cmp_i64(a->key[1], b->key[1]);
	case F_SYM:
		return strcmp(t->syms[a->key[1]], t->syms[b->key[1]]);
	case F_POLY: {
		int64_t na = a->key[1], nb = b->key[1];
		const int64_t *pa = a->key + 2, *pb = b->key + 2;
		for (int64_t i = 0; i < na && i < nb; i++) {
			int c = cmp_mono(t, pa + 2, (int)pa[1], pb + 2, (int)pb[1]);
			if (!c)
				c = cmp_i64(pa[0], pb[0]);
			if (c)
				return c;
			pa += 2 + pa[1];
			pb += 2 + pb[1];
		}
		return cmp_i64(na, nb);
	}
	default: {
		int c = cmp_dim(t, (DimId)a->key[1], (DimId)b->key[1]);
		return c ? c : cmp_dim(t, (DimId)a->key[2], (DimId)b->key[2]);
	}
	}
}

/* ---- polynomials under construction ------------------------------------ */

typedef struct PTerm { int64_t c; int32_t off, nf; } PTerm;
typedef struct Poly {
	PTerm *t; int32_t n, cap;
	int64_t *f; int32_t nf, capf;   /* factor pool */
} Poly;

/* The factors of a term: NULL while the pool is empty (offsetting a null
 * pointer, even by 0, is undefined). */
#define FAC(p, off) ((p)->f ? (p)->f + (off) : NULL)

static void poly_free(Poly *p)
{
	free(p->t);
	free(p->f);
	memset(p, 0, sizeof *p);
}

static void poly_term(Poly *p, int64_t c, const int64_t *f1, int n1, const int64_t *f2, int n2)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		p->t = xrealloc(p->t, sizeof(PTerm) * (size_t)p->cap);
	}
	while (p->nf + n1 + n2 > p->capf) {
		p->capf = p->capf ? p->capf * 2 : 32;
		p->f = xrealloc(p->f, sizeof(int64_t) * (size_t)p->capf);
	}
	PTerm *t = &p->t[p->n++];
	t->c = c;
	t->off = p->nf;
	t->nf = n1 + n2;
	if (n1)
		memcpy(p->f + p->nf, f1, sizeof(int64_t) * (size_t)n1);
	if (n2)
		memcpy(p->f + p->nf + n1, f2, sizeof(int64_t) * (size_t)n2);
	p->nf += n1 + n2;
}

/* Appends sign * d to p. */
static void poly_append(const struct DimTab *t, Poly *p, DimId d, int64_t mul)
{
	const Ent *e = &t->ents[d];
	if (e->form == F_CONST) {
		poly_term(p, (int64_t)((uint64_t)e->key[1] * (uint64_t)mul), NULL, 0, NULL, 0);
	} else if (e->form == F_POLY) {
		const int64_t *q = e->key + 2;
		for (int64_t i = 0; i < e->key[1]; i++) {
			poly_term(p, (int64_t)((uint64_t)q[0] * (uint64_t)mul), q + 2, (int)q[1], NULL, 0);
			q += 2 + q[1];
		}
	} else {
		int64_t f = d;
		poly_term(p, mul, &f, 1, NULL, 0);
	}
}

/* Insertion sorts: terms and factors are few, and no global context. */
static void sort_factors(const struct DimTab *t, int64_t *f, int n)
{
	for (int i = 1; i < n; i++) {
		int64_t x = f[i];
		int j = i;
		for (; j > 0 && cmp_dim(t, (DimId)f[j - 1], (DimId)x) > 0; j--)
			f[j] = f[j - 1];
		f[j] = x;
	}
}

static void sort_terms(const struct DimTab *t, Poly *p)
{
	for (int i = 1; i < p->n; i++) {
		PTerm x = p->t[i];
		int j = i;
		for (; j > 0 && cmp_mono(t, FAC(p, p->t[j - 1].off), p->t[j - 1].nf, FAC(p, x.off), x.nf) > 0; j--)
			p->t[j] = p->t[j - 1];
		p->t[j] = x;
	}
}

/* Sorts factors and terms, merges equal monomials, drops zero terms. */
static void poly_norm(struct DimTab *t, Poly *p)
{
	for (int i = 0; i < p->n; i++)
		sort_factors(t, FAC(p, p->t[i].off), p->t[i].nf);
	sort_terms(t, p);
	int w = 0;
	for (int i = 0; i < p->n; i++) {
		if (w > 0 && !cmp_mono(t, FAC(p, p->t[w - 1].off), p->t[w - 1].nf, FAC(p, p->t[i].off), p->t[i].nf)) {
			p->t[w - 1].c = wadd(t, p->t[w - 1].c, p->t[i].c);
			continue;
		}
		p->t[w++] = p->t[i];
	}
	p->n = w;
	w = 0;
	for (int i = 0; i < p->n; i++)
		if (p->t[i].c != 0)
			p->t[w++] = p->t[i];
	p->n = w;
}

static DimId intern_poly(struct DimTab *t, const Poly *p);

static DimId mk_const(struct DimTab *t, int64_t c)
{
	int64_t key[2] = { F_CONST, c };
	DimNode nd = { .kind = DIM_CONST, .c = c, .a = -1, .b = -1 };
	return intern(t, key, 2, nd);
}

/* Interns one term (c, f[0..nf-1]), f sorted. */
static DimId intern_term(struct DimTab *t, int64_t c, const int64_t *f, int nf)
{
	Poly p = { 0 };
	poly_term(&p, c, f, nf, NULL, 0);
	DimId d = intern_poly(t, &p);
	poly_free(&p);
	return d;
}

/* p must be normalized. */
static DimId intern_poly(struct DimTab *t, const Poly *p)
{
	if (p->n == 0)
		return mk_const(t, 0);
	if (p->n == 1 && p->t[0].nf == 0)
		return mk_const(t, p->t[0].c);
	if (p->n == 1 && p->t[0].nf == 1 && p->t[0].c == 1)
		return (DimId)p->f[p->t[0].off];
	/* tree view first: it interns the sub-expressions */
	DimNode nd = { .a = -1, .b = -1 };
	if (p->n >= 2) {
		Poly pre = *p;
		pre.n = p->n - 1;
		const PTerm *l = &p->t[p->n - 1];
		nd.kind = DIM_ADD;
		nd.a = intern_poly(t, &pre);
		nd.b = intern_term(t, l->c, FAC(p, l->off), l->nf);
	} else {
		const PTerm *l = &p->t[0];
		nd.kind = DIM_MUL;
		nd.a = l->nf == 1 ? mk_const(t, l->c) : intern_term(t, l->c, FAC(p, l->off), l->nf - 1);
		nd.b = (DimId)p->f[l->off + l->nf - 1];
	}
	int nkey = 2;
	for (int i = 0; i < p->n; i++)
		nkey += 2 + p->t[i].nf;
	int64_t *key = xrealloc(NULL, sizeof(int64_t) * (size_t)nkey);
	int k = 0;
	key[k++] = F_POLY;
	key[k++] = p->n;
	for (int i = 0; i < p->n; i++) {
		key[k++] = p->t[i].c;
		key[k++] = p->t[i].nf;
		for (int j = 0; j < p->t[i].nf; j++)
			key[k++] = p->f[p->t[i].off + j];
	}
	DimId d = intern(t, key, nkey, nd);
	free(key);
	return d;
}

static void poly_of(const struct DimTab *t, Poly *p, DimId d)
{
	memset(p, 0, sizeof *p);
	poly_append(t, p, d, 1);
}

/* out = a * b (not normalized) */
static void poly_mul(struct DimTab *t, Poly *out, const Poly *a, const Poly *b)
{
	for (int i = 0; i < a->n; i++)
		for (int j = 0; j < b->n; j++)
			poly_term(out, wmul(t, a->t[i].c, b->t[j].c), FAC(a, a->t[i].off), a->t[i].nf,
			          FAC(b, b->t[j].off), b->t[j].nf);
}

/* ---- public constructors ------------------------------------------------ */

static struct DimTab *TAB(const Graph *g)
{
	return g->dimtab;
}

DimId ir_dim_const(Graph *g, int64_t c)
{
	return mk_const(TAB(g), c);
}

static DimId sym_dim(struct DimTab *t, int s)
{
	int64_t key[2] = { F_SYM, s };
	DimNode nd = { .kind = DIM_SYM, .c = s, .a = -1, .b = -1 };
	return intern(t, key, 2, nd);
}

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* the slot of symbol name in symht: where it is, or the empty one where it
 * would go (symhtcap > 0) */
static uint32_t sym_slot(const struct DimTab *t, const char *name)
{
	uint32_t m = (uint32_t)t->symhtcap - 1, j = name_hash(name) & m;
	while (t->symht[j] >= 0 && strcmp(t->syms[t->symht[j]], name))
		j = (j + 1) & m;
	return j;
}

/* symbol i into symht, unless a symbol of its name is there (the first of
 * a name is the one found, as a search in order would find it) */
static void symht_add(struct DimTab *t, int32_t i)
{
	uint32_t j = sym_slot(t, t->syms[i]);
	if (t->symht[j] < 0)
		t->symht[j] = i;
}

/* room for one more symbol in symht (at most half full) */
static void symht_reserve(struct DimTab *t)
{
	if (2 * (t->nsyms + 1) <= t->symhtcap)
		return;
	t->symhtcap = t->symhtcap ? 2 * t->symhtcap : 64;
	t->symht = xrealloc(t->symht, sizeof(int32_t) * (size_t)t->symhtcap);
	memset(t->symht, -1, sizeof(int32_t) * (size_t)t->symhtcap);
	for (int32_t i = 0; i < t->nsyms; i++)
		symht_add(t, i);
}

static int new_sym(struct DimTab *t, const char *name, bool dyn)
{
	symht_reserve(t);
	if (t->nsyms == t->capsyms) {
		t->capsyms = t->capsyms ? t->capsyms * 2 : 16;
		t->syms = xrealloc(t->syms, sizeof(char *) * (size_t)t->capsyms);
		t->symdyn = xrealloc(t->symdyn, sizeof(bool) * (size_t)t->capsyms);
	}
	size_t len = strlen(name) + 1;
	t->syms[t->nsyms] = xrealloc(NULL, len);
	memcpy(t->syms[t->nsyms], name, len);
	t->symdyn[t->nsyms] = dyn;
	symht_add(t, t->nsyms);
	return t->nsyms++;
}

DimId ir_dim_sym(Graph *g, const char *name)
{
	struct DimTab *t = TAB(g);
	int s = ir_sym_lookup(g, name);
	if (s < 0)
		s = new_sym(t, name, false);
	return sym_dim(t, s);
}

/* "base[k]", primed ("base[k]'") until it is no input's symbol: the same
 * node output gets the same symbol when shape inference runs again. */
DimId ir_dim_dyn(Graph *g, const char *base, int k)
{
	struct DimTab *t = TAB(g);
	char name[300];
	int len = snprintf(name, sizeof name - 8, "%.200s[%d]", base ? base : "?", k);
	for (;;) {
		int s = ir_sym_lookup(g, name);
		if (s < 0)
			return sym_dim(t, new_sym(t, name, true));
		if (t->symdyn[s])
			return sym_dim(t, s);
		if (len + 2 >= (int)sizeof name)
			return sym_dim(t, new_sym(t, "?", true));   /* unreachable in practice */
		name[len++] = '\'';
		name[len] = 0;
	}
}

bool ir_sym_is_dyn(const Graph *g, int sym)
{
	const struct DimTab *t = TAB(g);
	return sym >= 0 && sym < t->nsyms && t->symdyn[sym];
}

bool ir_dim_has_dyn(const Graph *g, DimId d)
{
	const DimNode *n = ir_dim_node(g, d);
	if (n->kind == DIM_SYM)
		return ir_sym_is_dyn(g, (int)n->c);
	if (n->kind == DIM_CONST)
		return false;
	return ir_dim_has_dyn(g, n->a) || ir_dim_has_dyn(g, n->b);
}

int ir_nsyms(const Graph *g)
{
	return TAB(g)->nsyms;
}

const char *ir_sym_name(const Graph *g, int sym)
{
	const struct DimTab *t = TAB(g);
	return sym >= 0 && sym < t->nsyms ? t->syms[sym] : NULL;
}

int ir_sym_lookup(const Graph *g, const char *name)
{
	const struct DimTab *t = TAB(g);
	return t->symhtcap ? t->symht[sym_slot(t, name)] : -1;
}

/* Arithmetic that returns early, with *res: on an operand that is no dim
 * (a '?' of the text IR, say), -1, the unknown dim, which shape inference
 * refuses by name; on a dim deeper than IR_DIM_MAX_DEPTH, that dim as it
 * is: building on it would cost O(n^2) per step (a Concat of 5,000
 * symbolic dims took minutes), and shape inference refuses it anyway. */
static bool early(const struct DimTab *t, DimId a, DimId b, DimId *res)
{
	const Ent *ea = ent(t, a), *eb = ent(t, b);
	if (!ea || !eb)
		*res = -1;
	else if (ea->depth > IR_DIM_MAX_DEPTH)
		*res = a;
	else if (eb->depth > IR_DIM_MAX_DEPTH)
		*res = b;
	else
		return false;
	return true;
}

/* a + mul * b */
static DimId lin(Graph *g, DimId a, DimId b, int64_t mul)
{
	struct DimTab *t = TAB(g);
	DimId res;
	if (early(t, a, b, &res))
		return res;
	Poly p;
	poly_of(t, &p, a);
	poly_append(t, &p, b, mul);
	poly_norm(t, &p);
	DimId d = intern_poly(t, &p);
	poly_free(&p);
	return d;
}

DimId ir_dim_add(Graph *g, DimId a, DimId b)
{
	return lin(g, a, b, 1);
}

DimId ir_dim_sub(Graph *g, DimId a, DimId b)
{
	return lin(g, a, b, -1);
}

DimId ir_dim_mul(Graph *g, DimId a, DimId b)
{
	struct DimTab *t = TAB(g);
	DimId res;
	if (early(t, a, b, &res))
		return res;
	Poly pa, pb, p = { 0 };
	poly_of(t, &pa, a);
	poly_of(t, &pb, b);
	poly_mul(t, &p, &pa, &pb);
	poly_norm(t, &p);
	DimId d = intern_poly(t, &p);
	poly_free(&pa);
	poly_free(&pb);
	poly_free(&p);
	return d;
}

bool ir_dim_is_const(const Graph *g, DimId d, int64_t *c)
{
	const Ent *e = ent(TAB(g), d);
	if (!e || e->form != F_CONST)
		return false;
	if (c)
		*c = e->key[1];
	return true;
}

static DimId mk_atom(Graph *g, enum Form form, DimKind kind, DimId a, DimId b)
{
	int64_t key[3] = { form, a, b };
	DimNode nd = { .kind = kind, .c = 0, .a = a, .b = b };
	return intern(TAB(g), key, 3, nd);
}

/* Is sorted multiset b contained in a?  Writes a \ b to out. */
static bool mono_divides(const struct DimTab *t, const int64_t *a, int na, const int64_t *b, int nb,
                         int64_t *out, int *nout)
{
	int i = 0, j = 0, k = 0;
	while (i < na) {
		int c = j < nb ? cmp_dim(t, (DimId)a[i], (DimId)b[j]) : -1;
		if (c == 0) {
			i++;
			j++;
		} else if (c < 0) {
			out[k++] = a[i++];
		} else {
			return false;
		}
	}
	*nout = k;
	return j == nb;
}

/* Exact polynomial division a / b; -1 when it does not divide. */
static DimId poly_exact_div(Graph *g, DimId a, DimId b)
{
	struct DimTab *t = TAB(g);
	Poly r, pb, q = { 0 };
	poly_of(t, &r, a);
	poly_of(t, &pb, b);
	poly_norm(t, &r);
	poly_norm(t, &pb);
	DimId res = -1;
	if (pb.n == 0)
		goto out;
	for (int iter = 0; iter < 64; iter++) {
		if (r.n == 0) {
			poly_norm(t, &q);
			res = intern_poly(t, &q);
			break;
		}
		const PTerm *lr = &r.t[0], *lb = &pb.t[0];
		if (lb->c == 0 || lr->c % lb->c != 0 || (lb->c == -1 && lr->c == INT64_MIN))
			break;
		int64_t *qf = xrealloc(NULL, sizeof(int64_t) * (size_t)(lr->nf + 1));
		int nq = 0;
		bool ok = mono_divides(t, FAC(&r, lr->off), lr->nf, FAC(&pb, lb->off), lb->nf, qf, &nq);
		int64_t qc = lr->c / lb->c;
		if (ok) {
			Poly qt = { 0 }, prod = { 0 };
			poly_term(&qt, qc, qf, nq, NULL, 0);
			poly_term(&q, qc, qf, nq, NULL, 0);
			poly_mul(t, &prod, &qt, &pb);
			for (int i = 0; i < prod.n; i++)
				poly_term(&r, wmul(t, prod.t[i].c, -1), FAC(&prod, prod.t[i].off), prod.t[i].nf, NULL, 0);
			poly_norm(t, &r);
			poly_free(&qt);
			poly_free(&prod);
		}
		free(qf);
		if (!ok)
			break;
	}
out:
	poly_free(&r);
	poly_free(&pb);
	poly_free(&q);
	return res;
}

/* gcd of all coefficients of d (0 for the zero dim) */
static int64_t content(const struct DimTab *t, DimId d)
{
	Poly p;
	poly_of(t, &p, d);
	int64_t c = 0;
	for (int i = 0; i < p.n; i++)
		c = gcd64(c, p.t[i].c);
	poly_free(&p);
	return c;
}

/* d / k for k dividing every coefficient */
static DimId div_content(Graph *g, DimId d, int64_t k)
{
	struct DimTab *t = TAB(g);
	Poly p;
	poly_of(t, &p, d);
	for (int i = 0; i < p.n; i++)
		p.t[i].c /= k;
	poly_norm(t, &p);
	DimId r = intern_poly(t, &p);
	poly_free(&p);
	return r;
}

DimId ir_dim_div(Graph *g, DimId a, DimId b)
{
	struct DimTab *t = TAB(g);
	DimId res;
	if (early(t, a, b, &res))
		return res;
	int64_t ca, cb;
	bool ka = ir_dim_is_const(g, a, &ca), kb = ir_dim_is_const(g, b, &cb);
	if (kb && cb == 0)
		return mk_atom(g, F_DIV, DIM_DIV, a, b);   /* undefined: keep opaque */
	if (ka && kb)
		return mk_const(t, floordiv(ca, cb));
	if (kb && cb == 1)
		return a;
	if (ka && ca == 0)
		return a;
	if (a == b)
		return mk_const(t, 1);
	DimId q = poly_exact_div(g, a, b);
	if (q >= 0)
		return q;
	int64_t k = gcd64(content(t, a), content(t, b));
	if (k > 1)
		return ir_dim_div(g, div_content(g, a, k), div_content(g, b, k));
	/* (x // c1) // c2 == x // (c1*c2) for positive constants */
	const Ent *ea = ent(t, a);
	int64_t c1;
	if (kb && cb > 0 && ea->form == F_DIV && ir_dim_is_const(g, (DimId)ea->key[2], &c1) && c1 > 0) {
		int64_t c12;
		if (!__builtin_mul_overflow(c1, cb, &c12))
			return ir_dim_div(g, (DimId)ea->key[1], mk_const(t, c12));
	}
	return mk_atom(g, F_DIV, DIM_DIV, a, b);
}

DimId ir_dim_mod(Graph *g, DimId a, DimId b)
{
	struct DimTab *t = TAB(g);
	DimId res;
	if (early(t, a, b, &res))
		return res;
	int64_t ca, cb;
	bool ka = ir_dim_is_const(g, a, &ca), kb = ir_dim_is_const(g, b, &cb);
	if (kb && cb == 0)
		return mk_atom(g, F_MOD, DIM_MOD, a, b);
	if (ka && kb)
		return mk_const(t, floormod(ca, cb));
	if ((kb && (cb == 1 || cb == -1)) || (ka && ca == 0) || a == b)
		return mk_const(t, 0);
	if (poly_exact_div(g, a, b) >= 0)
		return mk_const(t, 0);
	return mk_atom(g, F_MOD, DIM_MOD, a, b);
}

/* Provably >= 0 for all non-negative symbol values. */
static bool nonneg(const struct DimTab *t, DimId d)
{
	const Ent *e = &t->ents[d];
	switch (e->form) {
	case F_CONST:
		return e->key[1] >= 0;
	case F_SYM:
		return true;
	case F_DIV:
		return nonneg(t, (DimId)e->key[1]) && nonneg(t, (DimId)e->key[2]);
	case F_MOD:
		return nonneg(t, (DimId)e->key[2]);
	case F_MAX:
		return nonneg(t, (DimId)e->key[1]) || nonneg(t, (DimId)e->key[2]);
	case F_MIN:
		return nonneg(t, (DimId)e->key[1]) && nonneg(t, (DimId)e->key[2]);
	default: {
		const int64_t *q = e->key + 2;
		for (int64_t i = 0; i < e->key[1]; i++) {
			if (q[0] < 0)
				return false;
			for (int64_t j = 0; j < q[1]; j++)
				if (!nonneg(t, (DimId)q[2 + j]))
					return false;
			q += 2 + q[1];
		}
		return true;
	}
	}
}

/* 1: a >= b always, -1: a <= b always, 0: unknown */
static int order_of(Graph *g, DimId a, DimId b)
{
	struct DimTab *t = TAB(g);
	int64_t ca, cb;
	bool ka = ir_dim_is_const(g, a, &ca), kb = ir_dim_is_const(g, b, &cb);
	if (ka && kb)
		return ca >= cb ? 1 : -1;
	if ((ka && ca == INT64_MAX) || (kb && cb == INT64_MIN))
		return 1;
	if ((kb && cb == INT64_MAX) || (ka && ca == INT64_MIN))
		return -1;
	bool saved = t->ovf;
	t->ovf = false;
	DimId d = ir_dim_sub(g, a, b);
	int r = 0;
	if (!t->ovf) {
		if (nonneg(t, d))
			r = 1;
		else if (nonneg(t, ir_dim_sub(g, b, a)))
			r = -1;
	}
	if (!r) {
		/* absorption: max(a, min(a, x)) == a, min(a, max(a, x)) == a */
		const Ent *ea = ent(t, a), *eb = ent(t, b);
		if (eb->form == F_MIN && (eb->key[1] == a || eb->key[2] == a))
			r = 1;
		else if (eb->form == F_MAX && (eb->key[1] == a || eb->key[2] == a))
			r = -1;
		else if (ea->form == F_MIN && (ea->key[1] == b || ea->key[2] == b))
			r = -1;
		else if (ea->form == F_MAX && (ea->key[1] == b || ea->key[2] == b))
			r = 1;
	}
	t->ovf = saved || t->ovf;
	return r;
}

static DimId minmax(Graph *g, DimId a, DimId b, bool is_max)
{
	DimId res;
	if (early(TAB(g), a, b, &res))
		return res;
	if (a == b)
		return a;
	int o = order_of(g, a, b);
	if (o)
		return (o > 0) == is_max ? a : b;
	if (cmp_dim(TAB(g), a, b) > 0) {
		DimId x = a;
		a = b;
		b = x;
	}
	return is_max ? mk_atom(g, F_MAX, DIM_MAX, a, b) : mk_atom(g, F_MIN, DIM_MIN, a, b);
}

DimId ir_dim_max(Graph *g, DimId a, DimId b)
{
	return minmax(g, a, b, true);
}

DimId ir_dim_min(Graph *g, DimId a, DimId b)
{
	return minmax(g, a, b, false);
}

int ir_dim_depth(const Graph *g, DimId d)
{
	const Ent *e = ent(TAB(g), d);
	return e ? e->depth : 0;
}

const DimNode *ir_dim_node(const Graph *g, DimId d)
{
	const Ent *e = ent(TAB(g), d);
	return e ? &e->node : NULL;
}

static bool covers_at(const Graph *g, DimId y, DimId x, int depth)
{
	if (y == x)
		return true;
	const DimNode *n = ir_dim_node(g, y);
	return n && depth < 8 && n->kind == DIM_MAX &&
	       (covers_at(g, n->a, x, depth + 1) || covers_at(g, n->b, x, depth + 1));
}

bool ir_dim_covers(const Graph *g, DimId y, DimId x)
{
	return covers_at(g, y, x, 0);
}

/* ---- evaluation --------------------------------------------------------- */

/* Evaluates d; *ovf is set when an addition, multiplication or division
 * overflows int64 (the result then wraps). */
static int64_t eval(const Graph *g, DimId d, const int64_t *symvals, bool *ovf)
{
	const struct DimTab *t = TAB(g);
	const Ent *e = ent(t, d);
	if (!e)
		return 0;
	int64_t a, b;
	switch (e->form) {
	case F_CONST:
		return e->key[1];
	case F_SYM:
		return symvals ? symvals[e->key[1]] : 0;
	case F_POLY: {
		int64_t sum = 0;
		const int64_t *q = e->key + 2;
		for (int64_t i = 0; i < e->key[1]; i++) {
			int64_t p = q[0];
			for (int64_t j = 0; j < q[1]; j++)
				*ovf |= __builtin_mul_overflow(p, eval(g, (DimId)q[2 + j], symvals, ovf), &p);
			*ovf |= __builtin_add_overflow(sum, p, &sum);
			q += 2 + q[1];
		}
		return sum;
	}
	default:
		break;
	}
	a = eval(g, (DimId)e->key[1], symvals, ovf);
	b = eval(g, (DimId)e->key[2], symvals, ovf);
	switch (e->form) {
	case F_DIV:
		*ovf |= b == -1 && a == INT64_MIN;
		return b ? floordiv(a, b) : 0;   /* division by zero: 0 */
	case F_MOD:
		return b ? floormod(a, b) : 0;
	case F_MAX:
		return a > b ? a : b;
	default:
		return a < b ? a : b;
	}
}

int64_t ir_dim_eval(const Graph *g, DimId d, const int64_t *symvals)
{
	bool ovf = false;
	return eval(g, d, symvals, &ovf);
}

bool ir_dim_eval_checked(const Graph *g, DimId d, const int64_t *symvals, int64_t *out)
{
	bool ovf = false;
	*out = eval(g, d, symvals, &ovf);
	return !ovf;
}

/* ---- printing ----------------------------------------------------------- */

typedef struct Sb { char *buf; size_t n, len; } Sb;

static void sb_put(Sb *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = s->len < s->n ? s->n - s->len : 0;
	int k = vsnprintf(room ? s->buf + s->len : NULL, room, fmt, ap);
	va_end(ap);
	if (k > 0)
		s->len += (size_t)k;
}

static void print_dim(const struct DimTab *t, DimId d, Sb *s);

/* What the parser reads as one name: [A-Za-z_][A-Za-z0-9_.]* */
static bool is_ident(const char *n)
{
	if (!isalpha((unsigned char)*n) && *n != '_')
		return false;
	for (; *n; n++)
		if (!isalnum((unsigned char)*n) && *n != '_' && *n != '.')
			return false;
	return true;
}

/* A symbol: bare when it reads back as one name, else double-quoted with
 * C escapes (\" \\ \xHH for control bytes), e.g. "batch-size". */
static void print_sym(const char *n, Sb *s)
{
	if (is_ident(n)) {
		sb_put(s, "%s", n);
		return;
	}
	sb_put(s, "\"");
	for (; *n; n++) {
		unsigned char c = (unsigned char)*n;
		if (c == '"' || c == '\\')
			sb_put(s, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			sb_put(s, "\\x%02x", c);
		else
			sb_put(s, "%c", c);
	}
	sb_put(s, "\"");
}

/* Operand of // and %: bare when a symbol or a non-negative constant. */
static void print_operand(const struct DimTab *t, DimId d, Sb *s)
{
	const Ent *e = &t->ents[d];
	bool bare = e->form == F_SYM || (e->form == F_CONST && e->key[1] >= 0);
	if (!bare)
		sb_put(s, "(");
	print_dim(t, d, s);
	if (!bare)
		sb_put(s, ")");
}

static void print_term(const struct DimTab *t, const int64_t *q, bool first, Sb *s)
{
	int64_t c = q[0];
	int nf = (int)q[1];
	uint64_t mag = c < 0 ? 0 - (uint64_t)c : (uint64_t)c;
	if (first)
		sb_put(s, c < 0 ? "-" : "");
	else
		sb_put(s, c < 0 ? " - " : " + ");
	if (nf == 0 || mag != 1)
		sb_put(s, "%llu%s", (unsigned long long)mag, nf ? "*" : "");
	/* a // or % factor needs parentheses unless it stands alone */
	bool alone = nf == 1 && mag == 1 && !(first && c < 0);
	for (int j = 0; j < nf; j++) {
		DimId f = (DimId)q[2 + j];
		int form = t->ents[f].form;
		bool par = !alone && (form == F_DIV || form == F_MOD);
		sb_put(s, "%s%s", j ? "*" : "", par ? "(" : "");
		print_dim(t, f, s);
		sb_put(s, par ? ")" : "");
	}
}

static void print_dim(const struct DimTab *t, DimId d, Sb *s)
{
	const Ent *e = ent(t, d);
	if (!e) {
		sb_put(s, "?");
		return;
	}
	switch (e->form) {
	case F_CONST:
		sb_put(s, "%lld", (long long)e->key[1]);
		break;
	case F_SYM:
		print_sym(t->syms[e->key[1]], s);
		break;
	case F_DIV:
	case F_MOD:
		print_operand(t, (DimId)e->key[1], s);
		sb_put(s, e->form == F_DIV ? "//" : "%%");
		print_operand(t, (DimId)e->key[2], s);
		break;
	case F_MAX:
	case F_MIN:
		sb_put(s, e->form == F_MAX ? "max(" : "min(");
		print_dim(t, (DimId)e->key[1], s);
		sb_put(s, ", ");
		print_dim(t, (DimId)e->key[2], s);
		sb_put(s, ")");
		break;
	default: {
		const int64_t *q = e->key + 2;
		for (int64_t i = 0; i < e->key[1]; i++) {
			print_term(t, q, i == 0, s);
			q += 2 + q[1];
		}
	}
	}
}

int ir_dim_str(const Graph *g, DimId d, char *buf, size_t n)
{
	Sb s = { buf, n, 0 };
	if (buf && n)
		buf[0] = 0;
	print_dim(TAB(g), d, &s);
	if (buf && n)
		buf[s.len < n ? s.len : n - 1] = 0;
	return (int)s.len;
}

/* ---- parsing -------------------------------------------------------------
 *   expr  := term (('+' | '-') term)*
 *   term  := unary (('*' | '//' | '%') unary)*
 *   unary := '-' unary | primary
 *   primary := INT | IDENT | QUOTED | ('max' | 'min') '(' expr ',' expr ')' | '(' expr ')'
 *   QUOTED  := '"' chars '"': a symbol of any name, \" \\ \xHH escaped
 * Precedence as in Python, which the dynamo exporter's strings follow. */

typedef struct Ps {
	Graph *g;
	const char *src, *p;
	Diag *diag;
	int depth;
	bool err;
	bool dry;   /* only check the syntax: build no dims, intern no symbols */
} Ps;

/* e, unless a dry run */
#define MK(ps, e) ((ps)->dry ? 0 : (e))

#define PARSE_MAX_DEPTH 64

static DimId perr(Ps *ps, const char *msg)
{
	if (!ps->err && ps->diag)
		diag_fail(ps->diag, "dim '%.200s': col %d: %s", ps->src, (int)(ps->p - ps->src) + 1, msg);
	ps->err = true;
	return -1;
}

static void skipws(Ps *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t')
		ps->p++;
}

static DimId p_expr(Ps *ps);

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* A symbol in the quoted form print_sym writes: "batch-size", "a\"b". */
static DimId p_quoted(Ps *ps)
{
	const char *p = ps->p + 1;
	char *name = malloc(strlen(p) + 1);
	size_t n = 0;
	if (!name)
		abort();
	for (; *p && *p != '"'; p++) {
		if (*p != '\\') {
			name[n++] = *p;
		} else if (p[1] == '"' || p[1] == '\\') {
			name[n++] = *++p;
		} else if (p[1] == 'x' && hexval((unsigned char)p[2]) >= 0 &&
		           hexval((unsigned char)p[3]) >= 0 && (p[2] != '0' || p[3] != '0')) {
			name[n++] = (char)(hexval((unsigned char)p[2]) * 16 + hexval((unsigned char)p[3]));
			p += 3;
		} else {
			free(name);
			ps->p = p;
			return perr(ps, "bad escape in quoted name");
		}
	}
	if (*p != '"') {
		free(name);
		ps->p = p;
		return perr(ps, "unterminated quoted name");
	}
	name[n] = 0;
	ps->p = p + 1;
	DimId d = MK(ps, ir_dim_sym(ps->g, name));
	free(name);
	return d;
}

static DimId p_primary(Ps *ps)
{
	skipws(ps);
	const char *p = ps->p;
	if (isdigit((unsigned char)*p)) {
		int64_t v = 0;
		while (isdigit((unsigned char)*p)) {
			if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
				return perr(ps, "integer too large");
			p++;
		}
		ps->p = p;
		return MK(ps, ir_dim_const(ps->g, v));
	}
	if (*p == '"')
		return p_quoted(ps);
	if (isalpha((unsigned char)*p) || *p == '_') {
		const char *b = p;
		while (isalnum((unsigned char)*p) || *p == '_' || *p == '.')
			p++;
		size_t len = (size_t)(p - b);
		if (len > 200)
			return perr(ps, "name too long");
		char name[201];
		memcpy(name, b, len);
		name[len] = 0;
		ps->p = p;
		skipws(ps);
		bool fmax = !strcmp(name, "max"), fmin = !strcmp(name, "min");
		if ((fmax || fmin) && *ps->p == '(') {
			ps->p++;
			DimId x = p_expr(ps);
			skipws(ps);
			if (x < 0 || *ps->p != ',')
				return perr(ps, "expected ','");
			ps->p++;
			DimId y = p_expr(ps);
			skipws(ps);
			if (y < 0 || *ps->p != ')')
				return perr(ps, "expected ')'");
			ps->p++;
			return MK(ps, fmax ? ir_dim_max(ps->g, x, y) : ir_dim_min(ps->g, x, y));
		}
		return MK(ps, ir_dim_sym(ps->g, name));
	}
	if (*p == '(') {
		ps->p++;
		DimId x = p_expr(ps);
		skipws(ps);
		if (x < 0 || *ps->p != ')')
			return perr(ps, "expected ')'");
		ps->p++;
		return x;
	}
	return perr(ps, *p ? "unexpected character" : "unexpected end");
}

static DimId p_unary(Ps *ps)
{
	skipws(ps);
	if (*ps->p == '-') {
		ps->p++;
		if (++ps->depth > PARSE_MAX_DEPTH)
			return perr(ps, "nested too deeply");
		DimId x = p_unary(ps);
		ps->depth--;
		return x < 0 ? -1 : MK(ps, ir_dim_mul(ps->g, ir_dim_const(ps->g, -1), x));
	}
	if (++ps->depth > PARSE_MAX_DEPTH)
		return perr(ps, "nested too deeply");
	DimId x = p_primary(ps);
	ps->depth--;
	return x;
}

static DimId p_term(Ps *ps)
{
	DimId x = p_unary(ps);
	while (x >= 0) {
		skipws(ps);
		int op;
		if (ps->p[0] == '/' && ps->p[1] == '/')
			op = 2;
		else if (ps->p[0] == '*' || ps->p[0] == '%')
			op = ps->p[0];
		else if (ps->p[0] == '/')
			return perr(ps, "true division '/' is not a dim operation (use //)");
		else
			break;
		ps->p += op == 2 ? 2 : 1;
		DimId y = p_unary(ps);
		if (y < 0)
			return -1;
		x = MK(ps, op == '*' ? ir_dim_mul(ps->g, x, y) : op == 2 ? ir_dim_div(ps->g, x, y)
		                                   : ir_dim_mod(ps->g, x, y));
	}
	return x;
}

static DimId p_expr(Ps *ps)
{
	DimId x = p_term(ps);
	while (x >= 0) {
		skipws(ps);
		char op = *ps->p;
		if (op != '+' && op != '-')
			break;
		ps->p++;
		DimId y = p_term(ps);
		if (y < 0)
			return -1;
		x = MK(ps, op == '+' ? ir_dim_add(ps->g, x, y) : ir_dim_sub(ps->g, x, y));
	}
	return x;
}

/* A '-' glued between two operands, as a hyphenated name has it
 * ("batch-size"); the exporters print a difference spaced ("s0 - 1"). */
static bool has_hyphen(const char *s)
{
	char prev = 0;   /* last character that was not blank */
	for (const char *p = s; *p; p++) {
		if (*p == ' ' || *p == '\t')
			continue;
		bool after_operand = isalnum((unsigned char)prev) || prev == '_' || prev == '.' ||
		                     prev == ')';
		if (*p == '-' && after_operand && (strchr(" \t", p[-1]) == NULL || !p[1] ||
		                                   strchr(" \t", p[1]) == NULL))
			return true;
		prev = *p;
	}
	return false;
}

DimId ir_dim_parse_param(Graph *g, const char *s, Diag *diag)
{
	if (!s)
		return diag_fail(diag, "dim: NULL string");
	/* a dry run first: a name must not leave symbols of its parts behind */
	Ps ps = { .g = g, .src = s, .p = s, .diag = NULL, .dry = true };
	bool expr = !strchr(s, '"') && !has_hyphen(s) && p_expr(&ps) >= 0;
	skipws(&ps);
	if (!expr || *ps.p)
		return ir_dim_sym(g, s);
	return ir_dim_parse(g, s, diag);
}

DimId ir_dim_parse(Graph *g, const char *s, Diag *diag)
{
	if (!s)
		return diag_fail(diag, "dim: NULL string");
	Ps ps = { .g = g, .src = s, .p = s, .diag = diag };
	DimId d = p_expr(&ps);
	if (d < 0)
		return -1;
	skipws(&ps);
	if (*ps.p)
		return perr(&ps, "unexpected trailing input");
	return d;
}

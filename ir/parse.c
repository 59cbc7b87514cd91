/* Parser for the textual IR printed by print.c (the grammar is in the
 * comment on top of print.c).  Values must be defined before they are
 * used; every error is one line "<file>:<line>:<col>: message" in diag and
 * the partly built graph is freed.  The parser never trusts its input: it
 * checks every count, range and end of text. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct Parser {
	const char *s;       /* the text, NUL-terminated */
	size_t pos;
	const char *file;
	Graph *g;
	Diag *diag;
	/* defined value names -> ValId (open addressing, names arena-owned) */
	ValId *tab;
	int32_t ntab, captab;
	/* scratch for dims, names, numbers */
	char buf[512];
	/* where each node and value was written (byte offsets), when asked */
	bool want_pos;
	size_t *node_at, *val_at;
	int32_t cap_node_at, cap_val_at;
	/* where the next graph of a multi-graph text starts (SIZE_MAX: none) */
	size_t next_graph;
} Parser;

/* ---- errors --------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int perr(Parser *p, size_t at, const char *fmt, ...)
{
	int line = 1;
	size_t ls = 0;
	for (size_t i = 0; i < at && p->s[i]; i++)
		if (p->s[i] == '\n') {
			line++;
			ls = i + 1;
		}
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return diag_fail(p->diag, "%s:%d:%zu: %s", p->file, line, at - ls + 1, msg);
}

/* ---- characters and tokens ---------------------------------------------- */

static int peek(const Parser *p) { return (unsigned char)p->s[p->pos]; }

/* A comment starts here: `//`, or `#` except the `#hash<` of a constant. */
static bool at_comment(const Parser *p)
{
	const char *t = p->s + p->pos;
	return (t[0] == '/' && t[1] == '/') || (t[0] == '#' && strncmp(t, "#hash<", 6));
}

/* Spaces, tabs, CRs and comments; not newlines. */
static void skip_ws(Parser *p)
{
	for (;;) {
		int c = peek(p);
		if (c == ' ' || c == '\t' || c == '\r') {
			p->pos++;
		} else if (at_comment(p)) {
			while (peek(p) && peek(p) != '\n')
				p->pos++;
		} else {
			return;
		}
	}
}

/* Whitespace including newlines. */
static void skip_nl(Parser *p)
{
	for (;;) {
		skip_ws(p);
		if (peek(p) != '\n')
			return;
		p->pos++;
	}
}

static const char *describe(const Parser *p)
{
	int c = peek(p);
	if (!c)
		return "end of text";
	if (c == '\n')
		return "end of line";
	return NULL;
}

static int expect_fail(Parser *p, const char *what)
{
	const char *d = describe(p);
	if (d)
		return perr(p, p->pos, "expected %s, found %s", what, d);
	return perr(p, p->pos, "expected %s, found '%c'", what, peek(p));
}

static bool accept(Parser *p, int c)
{
	skip_ws(p);
	if (peek(p) != c)
		return false;
	p->pos++;
	return true;
}

static int expect(Parser *p, int c)
{
	if (accept(p, c))
		return 0;
	char what[8] = { '\'', (char)c, '\'', 0 };
	return expect_fail(p, what);
}

static bool is_ident_char(int c)
{
	return isalnum(c) || c == '_' || c == '.';
}

/* An identifier run into p->buf; "" if none. */
static const char *ident(Parser *p)
{
	skip_ws(p);
	size_t n = 0;
	while (is_ident_char(peek(p))) {
		if (n + 1 < sizeof p->buf)
			p->buf[n++] = (char)peek(p);
		p->pos++;
	}
	p->buf[n] = 0;
	return p->buf;
}

static bool accept_word(Parser *p, const char *w)
{
	skip_ws(p);
	size_t n = strlen(w);
	if (strncmp(p->s + p->pos, w, n) || is_ident_char((unsigned char)p->s[p->pos + n]))
		return false;
	p->pos += n;
	return true;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* A quoted string into a malloc'd buffer (*out), or -1. */
static int string_lit(Parser *p, char **out)
{
	skip_ws(p);
	size_t start = p->pos;
	if (peek(p) != '"')
		return expect_fail(p, "a string");
	p->pos++;
	size_t cap = 32, n = 0;
	char *b = malloc(cap);
	if (!b)
		abort();
	for (;;) {
		int c = peek(p);
		if (!c || c == '\n') {
			free(b);
			return perr(p, start, "unterminated string");
		}
		p->pos++;
		if (c == '"')
			break;
		if (c == '\\') {
			int e = peek(p);
			size_t at = p->pos;
			p->pos++;
			switch (e) {
			case '"': c = '"'; break;
			case '\\': c = '\\'; break;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'x': {
				int h1 = hexval(peek(p)), h2 = h1 < 0 ? -1 : hexval((unsigned char)p->s[p->pos + 1]);
				if (h1 < 0 || h2 < 0 || (h1 == 0 && h2 == 0)) {
					free(b);
					return perr(p, at - 1, "bad \\x escape");
				}
				p->pos += 2;
				c = h1 * 16 + h2;
				break;
			}
			default:
				free(b);
				return perr(p, at - 1, "bad escape in string");
			}
		}
		if (n + 2 > cap) {
			cap *= 2;
			char *nb = realloc(b, cap);
			if (!nb)
				abort();
			b = nb;
		}
		b[n++] = (char)c;
	}
	b[n] = 0;
	*out = b;
	return 0;
}

/* A name after % or @: identifier or quoted string, arena-owned. */
static const char *name_tok(Parser *p)
{
	skip_ws(p);
	if (peek(p) == '"') {
		char *s;
		if (string_lit(p, &s))
			return NULL;
		const char *r = ir_arena_strdup(p->g->arena, s);
		free(s);
		return r;
	}
	size_t at = p->pos;
	const char *id = ident(p);
	if (!*id) {
		expect_fail(p, "a name");
		return NULL;
	}
	if (p->pos - at >= sizeof p->buf) {
		perr(p, at, "name too long");
		return NULL;
	}
	return ir_arena_strdup(p->g->arena, id);
}

/* `// from: a, "b"` ending a node's line (ir/print.c): the ONNX nodes a
 * fused node replaced, read back into Node.from; other comments are skipped. */
static int from_comment(Parser *p, NodeId nid)
{
	while (peek(p) == ' ' || peek(p) == '\t')
		p->pos++;
	if (strncmp(p->s + p->pos, "// from: ", 9) != 0)
		return 0;
	p->pos += 9;
	int cap = 8, n = 0;
	const char **names = malloc((size_t)cap * sizeof *names);
	if (!names)
		abort();
	for (;;) {
		const char *nm = name_tok(p);
		if (!nm) {
			free(names);
			return -1;
		}
		if (n == cap) {
			cap *= 2;
			const char **nn = realloc(names, (size_t)cap * sizeof *names);
			if (!nn)
				abort();
			names = nn;
		}
		names[n++] = nm;
		while (peek(p) == ' ' || peek(p) == '\t')
			p->pos++;
		if (peek(p) != ',')
			break;
		p->pos++;
	}
	Graph *g = p->g;
	const char **arr = ir_arena_alloc(g->arena, (size_t)n * sizeof *arr, 8);
	memcpy(arr, names, (size_t)n * sizeof *arr);
	free(names);
	g->nodes[nid].from = arr;
	g->nodes[nid].nfrom = n;
	return 0;
}

/* A number-ish token ([A-Za-z0-9.+-]) into p->buf; "" if none. */
static const char *num_tok(Parser *p)
{
	skip_ws(p);
	size_t n = 0;
	for (;;) {
		int c = peek(p);
		if (!(isalnum(c) || c == '.' || c == '+' || c == '-'))
			break;
		if (n + 1 < sizeof p->buf)
			p->buf[n++] = (char)c;
		p->pos++;
	}
	p->buf[n] = 0;
	return p->buf;
}

static bool tok_is_float(const char *t)
{
	return strpbrk(t, ".eE") || strstr(t, "inf") || strstr(t, "nan");
}

static bool parse_i64(const char *t, int64_t *v)
{
	if (!*t || tok_is_float(t))
		return false;
	char *end;
	errno = 0;
	long long x = strtoll(t, &end, 10);
	if (*end || errno)
		return false;
	*v = x;
	return true;
}

static bool parse_u64(const char *t, uint64_t *v)
{
	if (!*t || *t == '-' || tok_is_float(t))
		return false;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(t, &end, 10);
	if (*end || errno)
		return false;
	*v = x;
	return true;
}

static bool parse_f64(const char *t, double *v)
{
	if (!*t)
		return false;
	char *end;
	*v = strtod(t, &end);
	return !*end;   /* overflow gives inf, which is what the text says */
}

/* ---- value table -------------------------------------------------------- */

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static ValId lookup(const Parser *p, const char *name)
{
	if (!p->captab)
		return -1;
	uint32_t mask = (uint32_t)p->captab - 1;
	for (uint32_t i = hash_str(name) & mask;; i = (i + 1) & mask) {
		ValId v = p->tab[i];
		if (v < 0)
			return -1;
		if (!strcmp(p->g->vals[v].name, name))
			return v;
	}
}

static void tab_put(ValId *tab, int32_t cap, const Graph *g, ValId v)
{
	uint32_t mask = (uint32_t)cap - 1;
	uint32_t i = hash_str(g->vals[v].name) & mask;
	while (tab[i] >= 0)
		i = (i + 1) & mask;
	tab[i] = v;
}

static void define(Parser *p, ValId v)
{
	if ((p->ntab + 1) * 2 > p->captab) {
		int32_t cap = p->captab ? p->captab * 2 : 64;
		ValId *t = malloc((size_t)cap * sizeof *t);
		if (!t)
			abort();
		for (int32_t i = 0; i < cap; i++)
			t[i] = -1;
		for (int32_t i = 0; i < p->captab; i++)
			if (p->tab[i] >= 0)
				tab_put(t, cap, p->g, p->tab[i]);
		free(p->tab);
		p->tab = t;
		p->captab = cap;
	}
	tab_put(p->tab, p->captab, p->g, v);
	p->ntab++;
}

/* Records that node or value `id` was written at byte `at`. */
static void note_at(const Parser *p, size_t **arr, int32_t *cap, int32_t id, size_t at)
{
	if (!p->want_pos || id < 0)
		return;
	if (id >= *cap) {
		int32_t ncap = *cap ? *cap : 64;
		while (ncap <= id)
			ncap *= 2;
		size_t *na = realloc(*arr, (size_t)ncap * sizeof *na);
		if (!na)
			abort();
		for (int32_t i = *cap; i < ncap; i++)
			na[i] = SIZE_MAX;
		*arr = na;
		*cap = ncap;
	}
	(*arr)[id] = at;
}

static void note_val(Parser *p, ValId v, size_t at)
{
	note_at(p, &p->val_at, &p->cap_val_at, v, at);
}

/* '%' name of a value being defined; checks it is new. */
static const char *def_name(Parser *p)
{
	skip_ws(p);
	size_t at = p->pos;
	if (expect(p, '%'))
		return NULL;
	const char *n = name_tok(p);
	if (n && lookup(p, n) >= 0) {
		perr(p, at, "value %%%s is defined twice", n);
		return NULL;
	}
	return n;
}

/* '%' name of a used value, or '_' when allow_absent: *v = id or -1. */
static int ref(Parser *p, ValId *v, bool allow_absent)
{
	skip_ws(p);
	size_t at = p->pos;
	if (allow_absent && peek(p) == '_' && !is_ident_char((unsigned char)p->s[p->pos + 1])) {
		p->pos++;
		*v = -1;
		return 0;
	}
	if (peek(p) != '%')
		return expect_fail(p, allow_absent ? "a value (%name) or '_'" : "a value (%name)");
	p->pos++;
	const char *n = name_tok(p);
	if (!n)
		return -1;
	*v = lookup(p, n);
	if (*v < 0)
		return perr(p, at, "undefined value %%%s", n);
	return 0;
}

/* ---- types ---------------------------------------------------------------- */

typedef struct Type { DType dtype; int rank; DimId dims[IR_MAX_RANK]; } Type;

static int dim(Parser *p, DimId *out)
{
	skip_ws(p);
	size_t at = p->pos, n = 0;
	int depth = 0;
	for (;;) {
		int c = peek(p);
		if (!c || c == '\n')
			return perr(p, p->pos, "unterminated shape");
		if (depth == 0 && (c == ',' || c == ']'))
			break;
		if (c == '"') {   /* a quoted symbol name: copy it up to its closing quote */
			if (n + 2 >= sizeof p->buf)
				return perr(p, at, "dim expression too long");
			p->buf[n++] = (char)c;
			p->pos++;
			for (c = peek(p); c && c != '"' && c != '\n'; c = peek(p)) {
				if (n + 3 >= sizeof p->buf)
					return perr(p, at, "dim expression too long");
				p->buf[n++] = (char)c;
				p->pos++;
				if (c == '\\' && peek(p) && peek(p) != '\n') {
					p->buf[n++] = (char)peek(p);
					p->pos++;
				}
			}
			if (c != '"')
				return perr(p, at, "unterminated quoted name in dim");
		} else if (c == '(')
			depth++;
		else if (c == ')' && --depth < 0)
			return perr(p, p->pos, "unbalanced ')' in dim");
		if (n + 1 >= sizeof p->buf)
			return perr(p, at, "dim expression too long");
		p->buf[n++] = (char)c;
		p->pos++;
	}
	while (n && (p->buf[n - 1] == ' ' || p->buf[n - 1] == '\t'))
		n--;
	p->buf[n] = 0;
	if (!n)
		return perr(p, at, "empty dim");
	if (!strcmp(p->buf, "?")) {
		*out = -1;
		return 0;
	}
	Diag sub = { 0 };
	DimId d = ir_dim_parse(p->g, p->buf, &sub);
	if (d < 0 || sub.failed)
		return perr(p, at, "bad dim '%s': %s", p->buf, sub.failed ? sub.msg : "syntax error");
	*out = d;
	return 0;
}

static int type(Parser *p, Type *t)
{
	skip_ws(p);
	size_t at = p->pos;
	t->dtype = DT_UNDEF;
	t->rank = -1;
	if (peek(p) == '?') {
		p->pos++;
		if (peek(p) != '[')
			return 0;    /* '?' alone: nothing known */
	} else {
		const char *id = ident(p);
		int dt = ir_dtype_lookup(id);
		if (!*id)
			return expect_fail(p, "a type");
		if (dt < 0)
			return perr(p, at, "unknown dtype '%s'", id);
		t->dtype = (DType)dt;
		if (peek(p) == '?') {
			p->pos++;
			return 0;
		}
	}
	if (peek(p) != '[')
		return expect_fail(p, "'[' or '?' after the dtype");
	p->pos++;
	t->rank = 0;
	skip_ws(p);
	if (peek(p) == ']') {
		p->pos++;
		return 0;
	}
	for (;;) {
		skip_ws(p);
		if (t->rank == IR_MAX_RANK)
			return perr(p, p->pos, "rank exceeds %d", IR_MAX_RANK);
		if (dim(p, &t->dims[t->rank]))
			return -1;
		t->rank++;
		if (accept(p, ']'))
			return 0;
		if (expect(p, ','))
			return -1;
	}
}

static void set_type(Graph *g, ValId v, const Type *t)
{
	g->vals[v].dtype = t->dtype;
	ir_value_set_shape(g, v, t->rank, t->dims);
}

/* ---- element data ----------------------------------------------------------- */

static uint16_t float_to_half(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint32_t sign = (x >> 16) & 0x8000;
	int32_t exp = (int32_t)((x >> 23) & 0xff);
	uint32_t man = x & 0x7fffff;
	if (exp == 0xff)
		return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
	int32_t e = exp - 127 + 15;
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00);
	if (e <= 0) {
		if (e < -10)
			return (uint16_t)sign;
		man |= 0x800000;
		uint32_t shift = (uint32_t)(14 - e);
		uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
		if (rem > half || (rem == half && (h & 1)))
			h++;
		return (uint16_t)(sign | h);
	}
	uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
		h++;     /* may carry into the exponent, which is right */
	return (uint16_t)(sign | h);
}

static uint16_t float_to_bf16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	if ((x & 0x7fffffff) > 0x7f800000)
		return (uint16_t)((x >> 16) | 0x40);
	x += 0x7fff + ((x >> 16) & 1);
	return (uint16_t)(x >> 16);
}

/* Parses one element token of dtype t into out (ir_dtype_size(t) bytes). */
static int elem(Parser *p, DType t, unsigned char *out)
{
	skip_ws(p);
	size_t at = p->pos;
	const char *tok = num_tok(p);
	if (!*tok)
		return expect_fail(p, "a number");
	int64_t i;
	uint64_t u;
	double d;
	switch (t) {
	case DT_BOOL:
		if (!strcmp(tok, "true") || !strcmp(tok, "1"))
			out[0] = 1;
		else if (!strcmp(tok, "false") || !strcmp(tok, "0"))
			out[0] = 0;
		else
			return perr(p, at, "bad bool '%s'", tok);
		return 0;
	case DT_F32: case DT_F64: case DT_F16: case DT_BF16:
		if (!parse_f64(tok, &d))
			return perr(p, at, "bad number '%s'", tok);
		if (t == DT_F64) {
			memcpy(out, &d, 8);
		} else {
			float f = (float)d;
			if (t == DT_F32) {
				memcpy(out, &f, 4);
			} else {
				uint16_t h = t == DT_F16 ? float_to_half(f) : float_to_bf16(f);
				memcpy(out, &h, 2);
			}
		}
		return 0;
	case DT_U8: case DT_U16: case DT_U32: case DT_U64: {
		if (!parse_u64(tok, &u))
			return perr(p, at, "bad %s '%s'", ir_dtype_name(t), tok);
		size_t sz = ir_dtype_size(t);
		if (sz < 8 && u >> (sz * 8))
			return perr(p, at, "%s out of range for %s", tok, ir_dtype_name(t));
		if (sz == 1) { uint8_t v = (uint8_t)u; memcpy(out, &v, 1); }
		else if (sz == 2) { uint16_t v = (uint16_t)u; memcpy(out, &v, 2); }
		else if (sz == 4) { uint32_t v = (uint32_t)u; memcpy(out, &v, 4); }
		else memcpy(out, &u, 8);
		return 0;
	}
	case DT_I8: case DT_I16: case DT_I32: case DT_I64: {
		if (!parse_i64(tok, &i))
			return perr(p, at, "bad %s '%s'", ir_dtype_name(t), tok);
		size_t sz = ir_dtype_size(t);
		if (sz < 8) {
			int64_t lim = (int64_t)1 << (sz * 8 - 1);
			if (i < -lim || i >= lim)
				return perr(p, at, "%s out of range for %s", tok, ir_dtype_name(t));
		}
		if (sz == 1) { int8_t v = (int8_t)i; memcpy(out, &v, 1); }
		else if (sz == 2) { int16_t v = (int16_t)i; memcpy(out, &v, 2); }
		else if (sz == 4) { int32_t v = (int32_t)i; memcpy(out, &v, 4); }
		else memcpy(out, &i, 8);
		return 0;
	}
	default:
		return perr(p, at, "no literal elements for dtype %s", ir_dtype_name(t));
	}
}

/* '[' elem, ... ']' of dtype t: malloc'd buffer in *data, count in *n. */
static int elems(Parser *p, DType t, unsigned char **data, int64_t *n)
{
	size_t es = ir_dtype_size(t);
	*data = NULL;
	*n = 0;
	if (!es) {
		skip_ws(p);
		return perr(p, p->pos, "no literal elements for dtype %s", ir_dtype_name(t));
	}
	if (expect(p, '['))
		return -1;
	size_t cap = 16;
	unsigned char *b = malloc(cap * es);
	if (!b)
		abort();
	if (!accept(p, ']')) {
		for (;;) {
			if ((size_t)*n == cap) {
				cap *= 2;
				unsigned char *nb = realloc(b, cap * es);
				if (!nb)
					abort();
				b = nb;
			}
			if (elem(p, t, b + (size_t)*n * es))
				goto fail;
			(*n)++;
			if (accept(p, ']'))
				break;
			if (expect(p, ','))
				goto fail;
		}
	}
	*data = b;
	return 0;
fail:
	free(b);
	return -1;
}

/* ---- statements ---------------------------------------------------------- */

static int end_of_line(Parser *p)
{
	skip_ws(p);
	if (peek(p) == '\n') {
		p->pos++;
		return 0;
	}
	if (!peek(p))
		return 0;
	return expect_fail(p, "end of line");
}

static int const_stmt(Parser *p, const char *name, size_t at)
{
	Graph *g = p->g;
	Type t;
	skip_ws(p);
	size_t tat = p->pos;
	if (type(p, &t))
		return -1;
	if (t.dtype == DT_UNDEF || t.rank < 0)
		return perr(p, tat, "constant %%%s needs a dtype and a shape", name);
	int64_t dims[IR_MAX_RANK], numel = 1;
	for (int i = 0; i < t.rank; i++) {
		if (!ir_dim_is_const(g, t.dims[i], &dims[i]) || dims[i] < 0)
			return perr(p, tat, "constant %%%s: dim %d is not a constant", name, i);
		if (dims[i] && numel > (INT64_MAX / 16) / dims[i])
			return perr(p, tat, "constant %%%s is too large", name);
		numel *= dims[i];
	}
	size_t es = ir_dtype_size(t.dtype);
	skip_ws(p);
	if (accept_word(p, "dense")) {
		unsigned char *data;
		int64_t n;
		if (expect(p, '<') || elems(p, t.dtype, &data, &n))
			return -1;
		if (n != numel) {
			free(data);
			return perr(p, at, "constant %%%s has %lld elements, its type says %lld",
			            name, (long long)n, (long long)numel);
		}
		ValId v = ir_const_new(g, name, t.dtype, t.rank, dims, data, (size_t)n * es, false);
		free(data);
		define(p, v);
		note_val(p, v, at);
		return expect(p, '>');
	}
	if (peek(p) == '#') {
		p->pos++;
		if (!accept_word(p, "hash") || expect(p, '<'))
			return expect_fail(p, "#hash<...>");
		skip_ws(p);
		size_t hat = p->pos;
		uint64_t h = 0;
		int nd = 0;
		for (; hexval(peek(p)) >= 0; nd++, p->pos++)
			h = h << 4 | (uint64_t)hexval(peek(p));
		if (nd != 16)
			return perr(p, hat, "expected 16 hex digits in #hash<...>");
		if (expect(p, '>'))
			return -1;
		ValId v = ir_const_new(g, name, t.dtype, t.rank, dims, NULL, (size_t)numel * es, false);
		g->vals[v].hash = h;
		define(p, v);
		note_val(p, v, at);
		return 0;
	}
	return expect_fail(p, "'dense<' or '#hash<' after the constant's type");
}

static int attr_list(Parser *p, NodeId nid);

static int node_stmt(Parser *p, const char **outs, int nouts, size_t at)
{
	Graph *g = p->g;
	skip_ws(p);
	size_t opat = p->pos;
	const char *opn = ident(p);
	if (!*opn)
		return expect_fail(p, "an op name");
	int op = ir_op_lookup(opn);
	if (op < 0)
		return perr(p, opat, "unknown op '%s'", opn);
	if (expect(p, '('))
		return -1;
	int nin = 0, capin = 8;
	ValId *in = malloc((size_t)capin * sizeof *in);
	if (!in)
		abort();
	if (!accept(p, ')')) {
		for (;;) {
			if (nin == capin) {
				capin *= 2;
				ValId *ni = realloc(in, (size_t)capin * sizeof *in);
				if (!ni)
					abort();
				in = ni;
			}
			if (ref(p, &in[nin], true))
				goto fail;
			nin++;
			if (accept(p, ')'))
				break;
			if (expect(p, ','))
				goto fail;
		}
	}
	NodeId nid = ir_node_new(g, (Op)op, NULL, nin, in, nouts, outs);
	free(in);
	in = NULL;
	note_at(p, &p->node_at, &p->cap_node_at, nid, at);
	for (int k = 0; k < nouts; k++) {
		define(p, g->nodes[nid].out[k]);
		note_val(p, g->nodes[nid].out[k], at);
	}
	skip_ws(p);
	if (peek(p) == '{' && attr_list(p, nid))
		return -1;
	if (accept(p, ':')) {
		for (int k = 0;; k++) {
			skip_ws(p);
			size_t tat = p->pos;
			Type t;
			if (k >= nouts)
				return perr(p, tat, "more types than results");
			if (type(p, &t))
				return -1;
			set_type(g, g->nodes[nid].out[k], &t);
			note_val(p, g->nodes[nid].out[k], tat);   /* a type error points at the type */
			if (!accept(p, ',')) {
				if (k + 1 != nouts)
					return perr(p, tat, "%d results but %d types", nouts, k + 1);
				break;
			}
		}
	}
	if (accept(p, '@')) {
		char *loc;
		if (string_lit(p, &loc))
			return -1;
		g->nodes[nid].name = ir_arena_strdup(g->arena, loc);
		free(loc);
	}
	return from_comment(p, nid);
fail:
	free(in);
	return -1;
}

/* Attribute value after '='. */
static int attr_value(Parser *p, NodeId nid, const char *name)
{
	Graph *g = p->g;
	skip_ws(p);
	size_t at = p->pos;
	if (peek(p) == '"') {
		char *s;
		if (string_lit(p, &s))
			return -1;
		ir_attr_set_str(g, nid, name, s);
		free(s);
		return 0;
	}
	if (accept_word(p, "ints") || accept_word(p, "floats") || accept_word(p, "strings")) {
		char k = p->s[at];
		if (expect(p, '[') || expect(p, ']'))
			return -1;
		if (k == 'i')
			ir_attr_set_ints(g, nid, name, 0, NULL);
		else if (k == 'f')
			ir_attr_set_floats(g, nid, name, 0, NULL);
		else
			ir_attr_add(g, nid, name, A_STRINGS)->n = 0;
		return 0;
	}
	if (accept_word(p, "dense")) {
		if (expect(p, '<'))
			return -1;
		Type t;
		skip_ws(p);
		size_t tat = p->pos;
		if (type(p, &t))
			return -1;
		if (t.dtype == DT_UNDEF || t.rank < 0)
			return perr(p, tat, "tensor attribute needs a dtype and a shape");
		TensorLit lit = { .dtype = t.dtype, .rank = t.rank };
		int64_t numel = 1;
		for (int i = 0; i < t.rank; i++) {
			if (!ir_dim_is_const(g, t.dims[i], &lit.dims[i]) || lit.dims[i] < 0)
				return perr(p, tat, "tensor attribute dims must be constants");
			if (lit.dims[i] && numel > (INT64_MAX / 16) / lit.dims[i])
				return perr(p, tat, "tensor attribute too large");
			numel *= lit.dims[i];
		}
		unsigned char *data;
		int64_t n;
		if (elems(p, t.dtype, &data, &n))
			return -1;
		if (n != numel) {
			free(data);
			return perr(p, at, "tensor attribute has %lld elements, its type says %lld",
			            (long long)n, (long long)numel);
		}
		lit.data = data;
		lit.nbytes = (size_t)n * ir_dtype_size(t.dtype);
		ir_attr_set_tensor(g, nid, name, &lit);
		free(data);
		return expect(p, '>');
	}
	if (peek(p) == '[') {
		p->pos++;
		skip_ws(p);
		if (peek(p) == '"') {
			int n = 0, cap = 4;
			const char **strs = ir_arena_alloc(g->arena, (size_t)cap * sizeof *strs, 8);
			for (;;) {
				char *s;
				if (string_lit(p, &s))
					return -1;
				if (n == cap) {
					const char **ns = ir_arena_alloc(g->arena, (size_t)cap * 2 * sizeof *strs, 8);
					memcpy(ns, strs, (size_t)n * sizeof *strs);
					strs = ns;
					cap *= 2;
				}
				strs[n++] = ir_arena_strdup(g->arena, s);
				free(s);
				if (accept(p, ']'))
					break;
				if (expect(p, ','))
					return -1;
			}
			Attr *a = ir_attr_add(g, nid, name, A_STRINGS);
			a->n = n;
			a->u.strs = strs;
			return 0;
		}
		/* numbers: ints unless any element is a float */
		int n = 0, cap = 8;
		bool isf = false;
		int64_t *iv = malloc((size_t)cap * sizeof *iv);
		double *fv = malloc((size_t)cap * sizeof *fv);
		if (!iv || !fv)
			abort();
		int rc = 0;
		if (!accept(p, ']')) {
			for (;;) {
				skip_ws(p);
				size_t eat = p->pos;
				const char *tok = num_tok(p);
				if (n == cap) {
					cap *= 2;
					int64_t *ni = realloc(iv, (size_t)cap * sizeof *iv);
					double *nf = realloc(fv, (size_t)cap * sizeof *fv);
					if (!ni || !nf)
						abort();
					iv = ni;
					fv = nf;
				}
				if (!*tok) {
					rc = expect_fail(p, "a number");
					break;
				}
				if (tok_is_float(tok)) {
					isf = true;
					if (!parse_f64(tok, &fv[n])) {
						rc = perr(p, eat, "bad number '%s'", tok);
						break;
					}
					iv[n] = 0;
				} else {
					if (!parse_i64(tok, &iv[n])) {
						rc = perr(p, eat, "bad integer '%s'", tok);
						break;
					}
					fv[n] = (double)iv[n];
				}
				n++;
				if (accept(p, ']'))
					break;
				if (expect(p, ',')) {
					rc = -1;
					break;
				}
			}
		}
		if (!rc && isf) {
			float *f = malloc((size_t)(n ? n : 1) * sizeof *f);
			if (!f)
				abort();
			for (int i = 0; i < n; i++)
				f[i] = (float)fv[i];
			ir_attr_set_floats(g, nid, name, n, f);
			free(f);
		} else if (!rc) {
			ir_attr_set_ints(g, nid, name, n, iv);
		}
		free(iv);
		free(fv);
		return rc;
	}
	const char *tok = num_tok(p);
	if (!*tok)
		return expect_fail(p, "an attribute value");
	if (tok_is_float(tok)) {
		double d;
		if (!parse_f64(tok, &d))
			return perr(p, at, "bad number '%s'", tok);
		ir_attr_set_float(g, nid, name, (float)d);
	} else {
		int64_t i;
		if (!parse_i64(tok, &i))
			return perr(p, at, "bad integer '%s'", tok);
		ir_attr_set_int(g, nid, name, i);
	}
	return 0;
}

static int attr_list(Parser *p, NodeId nid)
{
	if (expect(p, '{'))
		return -1;
	for (;;) {
		skip_ws(p);
		size_t at = p->pos;
		const char *n = name_tok(p);
		if (!n)
			return -1;
		if (ir_attr_get(p->g, nid, n))
			return perr(p, at, "attribute '%s' given twice", n);
		if (expect(p, '=') || attr_value(p, nid, n))
			return -1;
		if (accept(p, '}'))
			return 0;
		if (expect(p, ','))
			return -1;
	}
}

/* One line of the body: a constant, a node, or the return. 1 on return. */
static int stmt(Parser *p)
{
	skip_ws(p);
	size_t at = p->pos;
	if (accept_word(p, "return")) {
		Graph *g = p->g;
		int n = 0, cap = 4;
		ValId *outs = ir_arena_alloc(g->arena, (size_t)cap * sizeof *outs, 4);
		skip_ws(p);
		if (peek(p) != '\n' && peek(p)) {
			for (;;) {
				ValId v;
				if (ref(p, &v, false))
					return -1;
				if (n == cap) {
					ValId *no = ir_arena_alloc(g->arena, (size_t)cap * 2 * sizeof *outs, 4);
					memcpy(no, outs, (size_t)n * sizeof *outs);
					outs = no;
					cap *= 2;
				}
				outs[n++] = v;
				if (!accept(p, ','))
					break;
			}
		}
		g->outputs = outs;
		g->noutputs = n;
		return end_of_line(p) ? -1 : 1;
	}
	if (accept_word(p, "assume")) {   /* assume [a, b] @"node" (ir/unify.c) */
		DimId a, b;
		char *loc;
		if (expect(p, '[') || dim(p, &a) || expect(p, ',') || dim(p, &b) || expect(p, ']') ||
		    expect(p, '@'))
			return -1;
		if (a < 0 || b < 0)
			return perr(p, at, "an assumption needs two dims");
		if (string_lit(p, &loc))
			return -1;
		ir_dim_assume_eq(p->g, a, b, loc);
		free(loc);
		return end_of_line(p);
	}
	const char *outs[64];
	int nouts = 0;
	if (peek(p) == '%') {
		for (;;) {
			skip_ws(p);
			size_t nat = p->pos;
			if (nouts == 64)
				return perr(p, nat, "too many results");
			const char *n = def_name(p);
			if (!n)
				return -1;
			for (int k = 0; k < nouts; k++)
				if (!strcmp(outs[k], n))
					return perr(p, nat, "value %%%s is defined twice", n);
			outs[nouts++] = n;
			if (!accept(p, ','))
				break;
		}
		if (expect(p, '='))
			return -1;
		if (accept_word(p, "const")) {
			if (nouts != 1)
				return perr(p, at, "a constant defines one value");
			if (const_stmt(p, outs[0], at))
				return -1;
			return end_of_line(p);
		}
	}
	if (node_stmt(p, outs, nouts, at))
		return -1;
	return end_of_line(p);
}

static int header(Parser *p)
{
	Graph *g = p->g;
	skip_nl(p);
	if (!accept_word(p, "graph"))
		return expect_fail(p, "'graph'");
	if (expect(p, '@'))
		return -1;
	const char *name = name_tok(p);
	if (!name)
		return -1;
	g->name = name;
	if (expect(p, '('))
		return -1;
	skip_nl(p);
	if (!accept(p, ')')) {
		for (;;) {
			skip_nl(p);
			size_t at = p->pos;
			const char *n = def_name(p);
			if (!n || expect(p, ':'))
				return -1;
			Type t;
			if (type(p, &t))
				return -1;
			/* a '?' dim of a graph input gets a symbol of its own, as the
			 * ONNX importer names a dim with neither value nor param */
			for (int k = 0; k < t.rank; k++)
				if (t.dims[k] < 0) {
					char sym[300];
					snprintf(sym, sizeof sym, "%s_d%d", n, k);
					t.dims[k] = ir_dim_sym(g, sym);
				}
			ValId v = ir_input_new(g, n, t.dtype, t.rank, t.dims);
			define(p, v);
			note_val(p, v, at);
			skip_nl(p);
			if (accept(p, ')'))
				break;
			if (expect(p, ','))
				return -1;
		}
	}
	if (accept_word(p, "opset")) {
		skip_ws(p);
		size_t at = p->pos;
		int64_t v;
		if (!parse_i64(num_tok(p), &v) || v < 0)
			return perr(p, at, "bad opset version");
		g->opset = v;
	}
	if (expect(p, '{'))
		return -1;
	return end_of_line(p);
}

/* Byte offsets where graphs start: lines whose first word is `graph`
 * (statements are one per line and strings and comments end with their
 * line, so nothing else starts a line with it).  malloc'd, count in *n. */
static size_t *graph_starts(const char *s, int *n)
{
	size_t *st = NULL;
	int cap = 0;
	*n = 0;
	for (size_t i = 0; s[i];) {
		size_t j = i;
		while (s[j] == ' ' || s[j] == '\t')
			j++;
		if (!strncmp(s + j, "graph", 5) && !is_ident_char((unsigned char)s[j + 5])) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 4;
				size_t *ns = realloc(st, (size_t)cap * sizeof *ns);
				if (!ns)
					abort();
				st = ns;
			}
			st[(*n)++] = j;
		}
		const char *nl = strchr(s + i, '\n');
		if (!nl)
			break;
		i = (size_t)(nl - s) + 1;
	}
	return st;
}

/* Byte offsets -> line and column (1-based); SIZE_MAX -> 0, 0. */
static IrTextPos *to_pos(const char *s, const size_t *at, int32_t nat, int32_t n)
{
	IrTextPos *out = calloc((size_t)n + 1, sizeof *out);
	if (!out)
		abort();
	size_t nlines = 1;
	for (const char *c = s; *c; c++)
		nlines += *c == '\n';
	size_t *ls = malloc(nlines * sizeof *ls), k = 1;
	if (!ls)
		abort();
	ls[0] = 0;
	for (size_t i = 0; s[i]; i++)
		if (s[i] == '\n')
			ls[k++] = i + 1;
	for (int32_t i = 0; i < n && i < nat; i++) {
		if (at[i] == SIZE_MAX)
			continue;
		size_t lo = 0, hi = nlines;   /* last line start <= at[i] */
		while (hi - lo > 1) {
			size_t mid = (lo + hi) / 2;
			if (ls[mid] <= at[i])
				lo = mid;
			else
				hi = mid;
		}
		out[i].line = (int32_t)(lo + 1);
		out[i].col = (int32_t)(at[i] - ls[lo] + 1);
	}
	free(ls);
	return out;
}

/* Picks the graph to parse: opts->graph (1-based), or the only one. */
static int pick_graph(Parser *p, IrParseOpts *opts)
{
	int n;
	size_t *st = graph_starts(p->s, &n);
	int want = opts ? opts->graph : 0;
	int rc = 0;
	if (opts)
		opts->ngraphs = n;
	p->next_graph = SIZE_MAX;
	if (want == 0 && n > 1) {
		rc = perr(p, st[1], "a second graph: the text holds %d (kiln dump prints one per "
		          "--print-before/--print-after match); choose one with --graph=N", n);
	} else if (want < 0 || (want > 0 && want > n)) {
		rc = diag_fail(p->diag, "%s: no graph %d: the text holds %d", p->file, want, n);
	} else if (want > 0) {
		p->pos = st[want - 1];
		if (want < n)
			p->next_graph = st[want];
	}
	free(st);
	return rc;
}

Graph *ir_parse(const char *text, const char *filename, Diag *diag)
{
	return ir_parse_ex(text, filename, NULL, diag);
}

Graph *ir_parse_ex(const char *text, const char *filename, IrParseOpts *opts, Diag *diag)
{
	Parser p = { .s = text ? text : "", .file = filename ? filename : "<input>", .diag = diag,
	             .want_pos = opts && opts->want_pos };
	Diag local = { 0 };
	if (!p.diag)
		p.diag = &local;
	if (opts) {
		opts->node_pos = opts->val_pos = NULL;
		opts->nnode_pos = opts->nval_pos = 0;
	}
	if (pick_graph(&p, opts))
		return NULL;
	p.g = ir_graph_new("main");
	if (filename)
		p.g->file = ir_arena_strdup(p.g->arena, filename);
	int rc = header(&p);
	while (rc == 0) {
		skip_nl(&p);
		if (!peek(&p)) {
			rc = perr(&p, p.pos, "unexpected end of text: missing 'return' and '}'");
			break;
		}
		if (p.pos == p.next_graph) {
			rc = perr(&p, p.pos, "the next graph begins: missing 'return' and '}'");
			break;
		}
		rc = stmt(&p);
	}
	if (rc == 1) {
		skip_nl(&p);
		if (expect(&p, '}'))
			rc = -1;
		else {
			skip_nl(&p);
			rc = peek(&p) && p.pos != p.next_graph ? perr(&p, p.pos, "text after the end of the graph") : 0;
		}
	}
	free(p.tab);
	if (!rc && p.want_pos) {
		opts->node_pos = to_pos(p.s, p.node_at, p.cap_node_at, p.g->nnodes);
		opts->nnode_pos = p.g->nnodes;
		opts->val_pos = to_pos(p.s, p.val_at, p.cap_val_at, p.g->nvals);
		opts->nval_pos = p.g->nvals;
	}
	free(p.node_at);
	free(p.val_at);
	if (rc) {
		ir_graph_free(p.g);
		return NULL;
	}
	return p.g;
}

/* ONNX ModelProto -> kiln IR.
 *
 * Unpacks the model with protobuf-c, checks the opset (1-21), refuses the
 * model listing every unsupported op at once, sorts the nodes
 * topologically (ONNX Runtime takes unsorted graphs, so tools write them),
 * and builds the IR graph in one pass over them: initializers and Constant
 * nodes become constants, graph inputs get their declared dtype and
 * symbolic dims, every other node becomes an IR node with its attributes;
 * a node of an older version of its op is upgraded to the op's newest form
 * (the IR form) by a named rewrite (onnx_upgrade.c, onnx_versions.def).
 * External data is mapped read-only, once per file,
 * and constants point into the mapping; the mappings are released with the
 * graph (g->release).
 *
 * Everything in the proto is untrusted: every pointer protobuf-c hands out
 * is checked, and every error is one line naming the file and the node or
 * tensor.  Shape inference is not run here, except for the few upgrades
 * that depend on an input's rank or dtype (onnx_value_type). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_import.h"
#include "onnx_private.h"

/* older opsets are upgraded node by node (onnx_upgrade.c) */
#define OPSET_MIN 1
#define OPSET_MAX 21
#define DIM_PARAM_MAX 1024       /* characters of a symbolic dim's expression */

/* ---- mapped external data files ----------------------------------------- */

typedef struct Mapping {
	char *path;          /* realpath of the file */
	void *addr;          /* NULL for an empty file */
	size_t size;
} Mapping;

typedef struct Mappings {
	Mapping *v;
	int n, cap;
} Mappings;

static void mappings_release(void *arg)
{
	Mappings *m = arg;
	if (!m)
		return;
	for (int i = 0; i < m->n; i++) {
		if (m->v[i].addr)
			munmap(m->v[i].addr, m->v[i].size);
		free(m->v[i].path);
	}
	free(m->v);
	free(m);
}

/* data pointer of empty constants (NULL data means elided in the IR) */
static const uint64_t empty_data;

/* ---- name table: ONNX tensor name -> ValId ------------------------------ */

typedef struct NameSlot { const char *key; ValId v; } NameSlot;
typedef struct NameTab { NameSlot *slots; size_t cap, n; } NameTab;

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static ValId names_get(const NameTab *t, const char *key)
{
	if (!t->cap)
		return -1;
	for (size_t i = hash_str(key) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		if (!t->slots[i].key)
			return -1;
		if (!strcmp(t->slots[i].key, key))
			return t->slots[i].v;
	}
}

/* key must outlive the table (arena-owned value names). */
static void names_put(NameTab *t, const char *key, ValId v)
{
	if (2 * (t->n + 1) > t->cap) {
		size_t ncap = t->cap ? 2 * t->cap : 64;
		NameSlot *ns = calloc(ncap, sizeof *ns);
		if (!ns)
			abort();
		for (size_t i = 0; i < t->cap; i++) {
			if (!t->slots[i].key)
				continue;
			size_t j = hash_str(t->slots[i].key) & (ncap - 1);
			while (ns[j].key)
				j = (j + 1) & (ncap - 1);
			ns[j] = t->slots[i];
		}
		free(t->slots);
		t->slots = ns;
		t->cap = ncap;
	}
	size_t i = hash_str(key) & (t->cap - 1);
	while (t->slots[i].key && strcmp(t->slots[i].key, key))
		i = (i + 1) & (t->cap - 1);
	if (!t->slots[i].key)
		t->n++;
	t->slots[i].key = key;
	t->slots[i].v = v;
}

/* ---- loader state ------------------------------------------------------- */

typedef struct Loader {
	Graph *g;
	const char *file;     /* for messages */
	const char *dir;      /* folder of external data, NULL: refused */
	char *realdir;        /* realpath(dir), lazily */
	Mappings *maps;
	NameTab names;
	Diag *diag;
	int32_t inferred;     /* g->order[0..inferred) have been shape-inferred */
} Loader;

static bool is_default_domain(const char *d)
{
	return !d || !d[0] || !strcmp(d, "ai.onnx");
}

/* ONNX Runtime's contrib ops (onnx_contrib.c) */
#define MS_DOMAIN "com.microsoft"

static bool is_ms_domain(const char *d)
{
	return d && !strcmp(d, MS_DOMAIN);
}

/* Registers an ONNX tensor name; SSA: a name is defined once. */
static int define_name(Loader *L, const char *what, ValId v)
{
	const char *key = IR_VAL(L->g, v)->name;
	if (!key || !key[0])
		return 0;
	if (names_get(&L->names, key) >= 0)
		return diag_fail(L->diag, "%s: %s: tensor '%s' is defined twice", L->file, what, key);
	names_put(&L->names, key, v);
	return 0;
}

/* ---- external data ------------------------------------------------------ */

static int map_file(Loader *L, const char *what, const char *real, const char *loc,
                    Mapping **out)
{
	Mappings *m = L->maps;
	for (int i = 0; i < m->n; i++)
		if (!strcmp(m->v[i].path, real)) {
			*out = &m->v[i];
			return 0;
		}
	/* O_NONBLOCK: a FIFO must not block the open; only regular files pass */
	int fd = open(real, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return diag_fail(L->diag, "%s: %s: cannot open external data file '%s': %s", L->file,
		                 what, loc, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return diag_fail(L->diag, "%s: %s: external data '%s' is not a regular file", L->file,
		                 what, loc);
	}
	void *addr = NULL;
	if (st.st_size > 0) {
		addr = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (addr == MAP_FAILED) {
			int e = errno;
			close(fd);
			return diag_fail(L->diag, "%s: %s: cannot map external data file '%s': %s",
			                 L->file, what, loc, strerror(e));
		}
	}
	close(fd);
	if (m->n == m->cap) {
		int ncap = m->cap ? 2 * m->cap : 4;
		Mapping *nv = realloc(m->v, (size_t)ncap * sizeof *nv);
		if (!nv)
			abort();
		m->v = nv;
		m->cap = ncap;
	}
	Mapping *mp = &m->v[m->n++];
	mp->path = strdup(real);
	if (!mp->path)
		abort();
	mp->addr = addr;
	mp->size = (size_t)st.st_size;
	*out = mp;
	return 0;
}

/* Parses a non-negative decimal; -1 if it is not one. */
static int64_t parse_u63(const char *s)
{
	if (!s || !*s)
		return -1;
	int64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* True if the relative path climbs above its starting folder with "..",
 * judged on the text alone (symlinks are checked with realpath later). */
static bool escapes_lexically(const char *p)
{
	int depth = 0;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return true;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			depth++;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	return false;
}

/* Resolves the external data of t (header already in o) and points
 * o->data into the mapping of its file. */
static int load_external(Loader *L, const Onnx__TensorProto *t, const char *what, OnnxData *o)
{
	const char *loc = NULL, *off_s = NULL, *len_s = NULL;
	for (size_t i = 0; i < t->n_external_data; i++) {
		const Onnx__StringStringEntryProto *e = t->external_data[i];
		if (!e || !e->key)
			continue;
		if (!strcmp(e->key, "location"))
			loc = e->value;
		else if (!strcmp(e->key, "offset"))
			off_s = e->value;
		else if (!strcmp(e->key, "length"))
			len_s = e->value;
	}
	if (!loc || !loc[0])
		return diag_fail(L->diag, "%s: %s: external data without a location", L->file, what);
	if (!L->dir)
		return diag_fail(L->diag, "%s: %s: external data '%s' cannot be used when loading from memory",
		                 L->file, what, loc);
	if (loc[0] == '/')
		return diag_fail(L->diag, "%s: %s: external data path '%s' is absolute (must be relative to the model's folder)",
		                 L->file, what, loc);
	if (escapes_lexically(loc))
		return diag_fail(L->diag, "%s: %s: external data path '%s' leaves the model's folder",
		                 L->file, what, loc);
	int64_t off = off_s ? parse_u63(off_s) : 0;
	int64_t len = len_s ? parse_u63(len_s) : (int64_t)o->nbytes;
	if (off < 0 || len < 0)
		return diag_fail(L->diag, "%s: %s: external data '%s': bad offset or length", L->file,
		                 what, loc);
	if ((uint64_t)len != o->nbytes)
		return diag_fail(L->diag, "%s: %s: external data '%s' has length %lld, the tensor needs %zu bytes",
		                 L->file, what, loc, (long long)len, o->nbytes);
	if (!L->realdir) {
		L->realdir = realpath(L->dir, NULL);
		if (!L->realdir)
			return diag_fail(L->diag, "%s: %s: cannot resolve the model's folder '%s': %s",
			                 L->file, what, L->dir, strerror(errno));
	}
	size_t need = strlen(L->realdir) + strlen(loc) + 2;
	char *joined = malloc(need);
	if (!joined)
		abort();
	snprintf(joined, need, "%s/%s", L->realdir, loc);
	char *real = realpath(joined, NULL);
	free(joined);
	if (!real)
		return diag_fail(L->diag, "%s: %s: external data file '%s' not found: %s", L->file, what,
		                 loc, strerror(errno));
	size_t dl = strlen(L->realdir);
	bool inside = !strncmp(real, L->realdir, dl) &&
	              (real[dl] == '/' || (dl == 1 && L->realdir[0] == '/'));
	if (!inside) {
		free(real);
		return diag_fail(L->diag, "%s: %s: external data path '%s' leaves the model's folder",
		                 L->file, what, loc);
	}
	Mapping *mp = NULL;
	int rc = map_file(L, what, real, loc, &mp);
	free(real);
	if (rc)
		return -1;
	if ((uint64_t)off > mp->size || o->nbytes > mp->size - (uint64_t)off)
		return diag_fail(L->diag, "%s: %s: external data '%s': offset %lld + length %zu is beyond the end of the file (%zu bytes)",
		                 L->file, what, loc, (long long)off, o->nbytes, mp->size);
	o->data = o->nbytes ? (const char *)mp->addr + off : NULL;
	return 0;
}

/* A tensor (initializer or Constant value) as a constant named name. */
static ValId tensor_const(Loader *L, const Onnx__TensorProto *t, const char *name, const char *what)
{
	OnnxData o;
	if (onnx_tensor_decode(t, L->file, what, &o, L->diag))
		return -1;
	bool borrow = false;
	if (o.external) {
		if (load_external(L, t, what, &o))
			return -1;
		/* borrow only when the elements are aligned in the mapping */
		borrow = ((uintptr_t)o.data % ir_dtype_size(o.dtype)) == 0;
	}
	/* empty tensors still get a data pointer: NULL means elided */
	ValId v = ir_const_new(L->g, name, o.dtype, o.rank, o.dims, o.data ? o.data : &empty_data,
	                       o.nbytes, borrow && o.data);
	onnx_data_free(&o);
	return v;
}

/* ---- graph inputs ------------------------------------------------------- */

static int load_input(Loader *L, const Onnx__ValueInfoProto *vi, int idx)
{
	char what[300];
	if (!vi || !vi->name || !vi->name[0])
		return diag_fail(L->diag, "%s: graph input %d has no name", L->file, idx);
	snprintf(what, sizeof what, "graph input '%s'", vi->name);
	/* old exports list initializers among the inputs: those stay constants */
	ValId prev = names_get(&L->names, vi->name);
	if (prev >= 0) {
		if (IR_VAL(L->g, prev)->kind == V_CONST)
			return 0;
		return diag_fail(L->diag, "%s: %s is listed twice", L->file, what);
	}
	const Onnx__TypeProto *tp = vi->type;
	if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
		return diag_fail(L->diag, "%s: %s: not a tensor (only tensor inputs are supported)",
		                 L->file, what);
	const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
	DType dt = tt->has_elem_type ? (DType)tt->elem_type : DT_UNDEF;
	if (!ir_dtype_size(dt))
		return diag_fail(L->diag, "%s: %s: element type %d is not supported", L->file, what,
		                 tt->has_elem_type ? (int)tt->elem_type : 0);
	int rank = -1;
	DimId dims[IR_MAX_RANK];
	const Onnx__TensorShapeProto *sh = tt->shape;
	if (sh) {
		if (sh->n_dim > IR_MAX_RANK)
			return diag_fail(L->diag, "%s: %s: rank %zu exceeds kiln's maximum of %d", L->file,
			                 what, sh->n_dim, IR_MAX_RANK);
		rank = (int)sh->n_dim;
		for (int k = 0; k < rank; k++) {
			const Onnx__TensorShapeProto__Dimension *d = sh->dim ? sh->dim[k] : NULL;
			if (d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
				if (d->dim_value < 0)
					return diag_fail(L->diag, "%s: %s: dim %d is negative (%lld)", L->file,
					                 what, k, (long long)d->dim_value);
				dims[k] = ir_dim_const(L->g, d->dim_value);
			} else if (d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
			           d->dim_param && d->dim_param[0]) {
				/* building a dim of n terms or factors takes O(n^2): a
				 * 20,000-term dim_param took minutes */
				size_t plen = strlen(d->dim_param);
				if (plen > DIM_PARAM_MAX)
					return diag_fail(L->diag, "%s: %s: dim %d: dim_param of %zu characters (kiln's limit is %d)",
					                 L->file, what, k, plen, DIM_PARAM_MAX);
				Diag pd = { 0 };
				dims[k] = ir_dim_parse_param(L->g, d->dim_param, &pd);
				int64_t c;
				if (dims[k] < 0)
					return diag_fail(L->diag, "%s: %s: dim %d: %s", L->file, what, k,
					                 pd.failed ? pd.msg : "cannot parse");
				if (ir_dim_is_const(L->g, dims[k], &c) && c < 0)
					return diag_fail(L->diag, "%s: %s: dim %d is negative (%lld)", L->file,
					                 what, k, (long long)c);
			} else {
				char sym[300];
				snprintf(sym, sizeof sym, "%s_d%d", vi->name, k);
				dims[k] = ir_dim_sym(L->g, sym);
			}
		}
	}
	ValId v = ir_input_new(L->g, vi->name, dt, rank, rank > 0 ? dims : NULL);
	return define_name(L, what, v);
}

/* ---- attributes --------------------------------------------------------- */

typedef Onnx__AttributeProto__AttributeType AttrType;

/* The attribute's type; guessed from the filled field for old exports
 * that leave it unset. */
static AttrType attr_type(const Onnx__AttributeProto *a)
{
	if (a->has_type)
		return a->type;
	if (a->has_f) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
	if (a->has_i) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	if (a->has_s) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
	if (a->t) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
	if (a->g) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
	if (a->n_floats) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
	if (a->n_ints) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
	if (a->n_strings) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
	return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED;
}

/* Arena copy of a protobuf bytes field as a C string (stops at a NUL). */
static const char *bytes_str(Graph *g, ProtobufCBinaryData b)
{
	char *s = ir_arena_alloc(g->arena, b.len + 1, 1);
	if (b.len && b.data)
		memcpy(s, b.data, b.len);
	s[b.data ? b.len : 0] = 0;
	return s;
}

static int attr_tensor(Loader *L, NodeId n, const char *aname, const Onnx__TensorProto *t,
                       const char *where)
{
	char what[1024];
	snprintf(what, sizeof what, "%s: attribute '%s'", where, aname);
	OnnxData o;
	if (onnx_tensor_decode(t, L->file, what, &o, L->diag))
		return -1;
	if (o.external) {
		onnx_data_free(&o);
		return diag_fail(L->diag, "%s: %s: external data is not supported in attributes",
		                 L->file, what);
	}
	TensorLit lit = { .dtype = o.dtype, .rank = o.rank, .nbytes = o.nbytes };
	memcpy(lit.dims, o.dims, sizeof lit.dims);
	lit.data = (void *)o.data;   /* ir_attr_set_tensor copies it */
	ir_attr_set_tensor(L->g, n, aname, &lit);
	onnx_data_free(&o);
	return 0;
}

static int load_attr(Loader *L, NodeId n, const Onnx__AttributeProto *a, const char *where)
{
	Graph *g = L->g;
	if (!a || !a->name || !a->name[0])
		return diag_fail(L->diag, "%s: %s: attribute without a name", L->file, where);
	if (a->n_ints > INT32_MAX || a->n_floats > INT32_MAX || a->n_strings > INT32_MAX)
		return diag_fail(L->diag, "%s: %s: attribute '%s' is too long", L->file, where, a->name);
	if (ir_attr_get(g, n, a->name))
		return diag_fail(L->diag, "%s: %s: attribute '%s' is given twice", L->file, where, a->name);
	switch (attr_type(a)) {
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
		ir_attr_set_int(g, n, a->name, a->i);
		return 0;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
		ir_attr_set_float(g, n, a->name, a->f);
		return 0;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
		ir_attr_set_str(g, n, a->name, bytes_str(g, a->s));
		return 0;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
		if (a->n_ints && !a->ints)
			break;
		ir_attr_set_ints(g, n, a->name, (int)a->n_ints, a->ints);
		return 0;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
		if (a->n_floats && !a->floats)
			break;
		ir_attr_set_floats(g, n, a->name, (int)a->n_floats, a->floats);
		return 0;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS: {
		if (a->n_strings && !a->strings)
			break;
		const char **strs = ir_arena_alloc(g->arena, (a->n_strings + 1) * sizeof *strs,
		                                   _Alignof(const char *));
		for (size_t i = 0; i < a->n_strings; i++)
			strs[i] = bytes_str(g, a->strings[i]);
		Attr *at = ir_attr_add(g, n, a->name, A_STRINGS);
		at->n = (int32_t)a->n_strings;
		at->u.strs = strs;
		return 0;
	}
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
		if (!a->t)
			break;
		return attr_tensor(L, n, a->name, a->t, where);
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
		return diag_fail(L->diag, "%s: %s: attribute '%s': subgraphs are not supported",
		                 L->file, where, a->name);
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR:
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
		return diag_fail(L->diag, "%s: %s: attribute '%s': sparse tensors are not supported",
		                 L->file, where, a->name);
	default:
		return diag_fail(L->diag, "%s: %s: attribute '%s': attribute type %d is not supported",
		                 L->file, where, a->name, (int)attr_type(a));
	}
	return diag_fail(L->diag, "%s: %s: attribute '%s' is malformed", L->file, where, a->name);
}

/* ---- nodes -------------------------------------------------------------- */

/* A Constant node: its value as a constant named by its output. */
static int load_constant(Loader *L, const Onnx__NodeProto *nd, const char *where)
{
	if (nd->n_input != 0 || nd->n_output != 1 || !nd->output || !nd->output[0] ||
	    !nd->output[0][0])
		return diag_fail(L->diag, "%s: %s: expects 0 inputs and 1 named output", L->file, where);
	if (nd->n_attribute != 1 || !nd->attribute || !nd->attribute[0] ||
	    !nd->attribute[0]->name)
		return diag_fail(L->diag, "%s: %s: expects exactly one value attribute", L->file, where);
	const Onnx__AttributeProto *a = nd->attribute[0];
	const char *out = nd->output[0];
	const char *an = a->name;
	char what[1024];
	snprintf(what, sizeof what, "%s: attribute '%s'", where, an);
	ValId v = -1;
	if (!strcmp(an, "value") && a->t) {
		v = tensor_const(L, a->t, out, what);
		if (v < 0)
			return -1;
	} else if (!strcmp(an, "value_float") && a->has_f) {
		v = ir_const_new(L->g, out, DT_F32, 0, NULL, &a->f, sizeof(float), false);
	} else if (!strcmp(an, "value_int") && a->has_i) {
		v = ir_const_new(L->g, out, DT_I64, 0, NULL, &a->i, sizeof(int64_t), false);
	} else if (!strcmp(an, "value_floats") && (a->floats || !a->n_floats)) {
		int64_t d = (int64_t)a->n_floats;
		v = ir_const_new(L->g, out, DT_F32, 1, &d, a->n_floats ? (const void *)a->floats : &empty_data, a->n_floats * sizeof(float), false);
	} else if (!strcmp(an, "value_ints") && (a->ints || !a->n_ints)) {
		int64_t d = (int64_t)a->n_ints;
		v = ir_const_new(L->g, out, DT_I64, 1, &d, a->n_ints ? (const void *)a->ints : &empty_data, a->n_ints * sizeof(int64_t), false);
	} else if (!strcmp(an, "value_string") || !strcmp(an, "value_strings")) {
		return diag_fail(L->diag, "%s: %s: string constants are not supported", L->file, where);
	} else if (!strcmp(an, "sparse_value")) {
		return diag_fail(L->diag, "%s: %s: sparse constants are not supported", L->file, where);
	} else {
		return diag_fail(L->diag, "%s: %s: unsupported or malformed attribute '%s'", L->file,
		                 where, an);
	}
	return define_name(L, where, v);
}

static void arity_str(int mi, int ma, const char *noun, char *buf, size_t n)
{
	if (ma < 0)
		snprintf(buf, n, "at least %d %s%s", mi, noun, mi == 1 ? "" : "s");
	else if (mi == ma)
		snprintf(buf, n, "%d %s%s", mi, noun, mi == 1 ? "" : "s");
	else
		snprintf(buf, n, "%d to %d %ss", mi, ma, noun);
}

static int check_arity(Loader *L, const OpInfo *oi, size_t nin, size_t nout, const char *where)
{
	char buf[64];
	if (nin < (size_t)oi->min_in || (oi->max_in >= 0 && nin > (size_t)oi->max_in)) {
		arity_str(oi->min_in, oi->max_in, "input", buf, sizeof buf);
		return diag_fail(L->diag, "%s: %s: expects %s, has %zu", L->file, where, buf, nin);
	}
	if (nout < (size_t)oi->min_out || (oi->max_out >= 0 && nout > (size_t)oi->max_out)) {
		arity_str(oi->min_out, oi->max_out, "output", buf, sizeof buf);
		return diag_fail(L->diag, "%s: %s: expects %s, has %zu", L->file, where, buf, nout);
	}
	return 0;
}

/* "node 'NAME' (OP)" of node index, for messages; name gets the node's
 * name (OpType_<index> when it has none). */
static void node_where(const Onnx__NodeProto *nd, int index, char *name, size_t nn, char *where,
                       size_t nw)
{
	const char *op_type = nd->op_type && nd->op_type[0] ? nd->op_type : NULL;
	if (nd->name && nd->name[0])
		snprintf(name, nn, "%s", nd->name);
	else
		snprintf(name, nn, "%s_%d", op_type ? op_type : "node", index);
	snprintf(where, nw, "node '%s' (%s)", name, op_type ? op_type : "?");
}

/* ---- for the upgrades (onnx_private.h) ---------------------------------- */

int onnx_node_attrs(const OnnxNode *u, NodeId n, const char *const *skip)
{
	for (size_t i = 0; i < u->nd->n_attribute; i++) {
		const Onnx__AttributeProto *a = u->nd->attribute[i];
		bool skipped = false;
		for (int k = 0; skip && skip[k] && a && a->name; k++)
			skipped |= !strcmp(a->name, skip[k]);
		if (!skipped && load_attr(u->L, n, a, u->where))
			return -1;
	}
	return 0;
}

void onnx_value_type(const OnnxNode *u, ValId v, DType *dt, int *rank)
{
	Loader *L = u->L;
	Graph *g = L->g;
	/* nodes are imported in topological order: infer what is new; a node
	 * that fails leaves its outputs unknown (compiling reports it later) */
	for (; L->inferred < g->norder; L->inferred++) {
		Diag d = { 0 };
		ir_infer_node(g, g->order[L->inferred], &d);
	}
	const Value *x = IR_VAL(g, v);
	*dt = x->rank >= 0 ? x->dtype : DT_UNDEF;
	*rank = x->dtype != DT_UNDEF ? x->rank : -1;
}

ValId onnx_node_const(const OnnxNode *u, const char *what, DType t, int rank,
                      const int64_t *dims, const void *data, size_t nbytes)
{
	char name[400];
	snprintf(name, sizeof name, "%s.%s", u->name, what);
	for (int k = 1; names_get(&u->L->names, name) >= 0 && k < 1000; k++)
		snprintf(name, sizeof name, "%s.%s%d", u->name, what, k);
	return ir_const_new(u->g, name, t, rank, dims, data, nbytes, false);
}

/* Resolves a node's input names to values and checks its output names.
 * Inputs below min_in must not be empty. */
static int node_operands(Loader *L, const Onnx__NodeProto *nd, int min_in, size_t nin,
                         size_t nout, ValId *ins, const char **outs, const char *where)
{
	for (size_t i = 0; i < nin; i++) {
		const char *in = nd->input[i];
		if (!in || !in[0]) {
			if ((int)i < min_in)
				return diag_fail(L->diag, "%s: %s: required input %zu is empty", L->file,
				                 where, i);
			ins[i] = -1;
			continue;
		}
		ins[i] = names_get(&L->names, in);
		if (ins[i] < 0)
			return diag_fail(L->diag, "%s: %s: input '%s' is not defined", L->file, where, in);
	}
	for (size_t i = 0; i < nout; i++) {
		outs[i] = nd->output[i] && nd->output[i][0] ? nd->output[i] : NULL;
		if (outs[i] && names_get(&L->names, outs[i]) >= 0)
			return diag_fail(L->diag, "%s: %s: output '%s' is already defined", L->file, where,
			                 outs[i]);
	}
	return 0;
}

/* The node of an op's newest form, attributes as they are. */
static int node_same(Loader *L, const Onnx__NodeProto *nd, int op, const char *name,
                     size_t nin, size_t nout, ValId *ins, const char **outs, const char *where,
                     NodeId *last)
{
	const OpInfo *oi = &ir_opinfo[op];
	if (check_arity(L, oi, nin, nout, where) ||
	    node_operands(L, nd, oi->min_in, nin, nout, ins, outs, where))
		return -1;
	NodeId n = ir_node_new(L->g, (Op)op, name, (int)nin, ins, (int)nout, outs);
	*last = n;
	for (size_t i = 0; i < nd->n_attribute; i++)
		if (load_attr(L, n, nd->attribute[i], where))
			return -1;
	return 0;
}

static int load_node(Loader *L, const Onnx__NodeProto *nd, int index)
{
	if (!nd)
		return diag_fail(L->diag, "%s: node %d is malformed", L->file, index);
	const char *op_type = nd->op_type && nd->op_type[0] ? nd->op_type : NULL;
	char name[300], where[700];
	node_where(nd, index, name, sizeof name, where, sizeof where);
	if (!op_type)
		return diag_fail(L->diag, "%s: %s: no op_type", L->file, where);
	bool ms = is_ms_domain(nd->domain);
	if (!is_default_domain(nd->domain) && !ms)
		return diag_fail(L->diag, "%s: %s: domain '%s' is not supported", L->file, where,
		                 nd->domain);
	if (ms)   /* "node 'n' (com.microsoft.Attention)", as node_where */
		snprintf(where, sizeof where, "node '%s' (%s.%s)", name, MS_DOMAIN, op_type);
	if ((nd->n_input && !nd->input) || (nd->n_output && !nd->output) ||
	    (nd->n_attribute && !nd->attribute))
		return diag_fail(L->diag, "%s: %s: malformed node", L->file, where);
	if (!ms && !strcmp(op_type, "Constant")) {
		L->g->nconst_nodes++;
		return load_constant(L, nd, where);
	}
	int64_t since = 1;
	int act = ms ? -1 : onnx_op_version(op_type, L->g->opset, &since);
	bool contrib = ms || (act < 0 && onnx_contrib_onnx_domain(op_type));
	if (contrib)
		act = onnx_contrib_known(op_type) ? UA_COUNT : -1;
	int op = contrib ? -1 : ir_op_lookup(op_type);   /* -1 for an op only an upgrade imports */
	if (act < 0 || act == UA_unsupported || (op < 0 && act == UA_same))
		return diag_fail(L->diag, "%s: %s: unsupported op", L->file, where);
	/* trailing empty names are omitted optional inputs/outputs */
	size_t nin = nd->n_input, nout = nd->n_output;
	while (nin > 0 && (!nd->input[nin - 1] || !nd->input[nin - 1][0]))
		nin--;
	while (nout > 1 && (!nd->output[nout - 1] || !nd->output[nout - 1][0]))
		nout--;
	if (nin > INT32_MAX / 2 || nout > INT32_MAX / 2)
		return diag_fail(L->diag, "%s: %s: too many inputs or outputs", L->file, where);
	/* heap, not the stack: variadic ops may have any number of operands */
	ValId *ins = malloc((nin + 1) * sizeof *ins);
	const char **outs = malloc((nout + 1) * sizeof *outs);
	ValId *res = malloc((nout + 1) * sizeof *res);   /* an upgrade's outputs, -1: last's */
	if (!ins || !outs || !res)
		abort();
	for (size_t i = 0; i < nout; i++)
		res[i] = -1;
	NodeId last = -1;
	int rc;
	if (act == UA_same) {
		rc = node_same(L, nd, op, name, nin, nout, ins, outs, where, &last);
	} else {
		rc = node_operands(L, nd, 0, nin, nout, ins, outs, where);
		if (!rc) {
			OnnxNode u = { .L = L, .g = L->g, .diag = L->diag, .file = L->file,
			               .where = where, .name = name, .nd = nd, .op = op, .since = since,
			               .nin = (int)nin, .nout = (int)nout, .in = ins, .out = outs };
			rc = contrib ? onnx_contrib_import(&u, &last, res) : onnx_upgrade(act, &u, &last);
		}
	}
	for (size_t i = 0; i < nout && !rc; i++) {
		if (!outs[i])
			continue;
		if (res[i] < 0 && (int)i < IR_NODE(L->g, last)->nout)
			res[i] = IR_NODE(L->g, last)->out[i];
		if (res[i] < 0)
			rc = diag_fail(L->diag, "%s: %s: internal error: the upgrade lost outputs",
			               L->file, where);
		else
			rc = define_name(L, where, res[i]);
	}
	free(ins);
	free(outs);
	free(res);
	return rc;
}

/* ---- unsupported ops: all of them in one message ------------------------ */

typedef struct Unsup {
	const char *domain, *op;   /* domain NULL: the default one */
	const char *first;         /* the first node's "node 'x'" */
	long count;
} Unsup;

/* True if the node's op (domain, type, version) cannot be imported.
 * Malformed nodes pass: the node-by-node import names their fault. */
static bool node_unsupported(const Loader *L, const Onnx__NodeProto *nd)
{
	if (!nd || !nd->op_type || !nd->op_type[0])
		return false;
	if (is_ms_domain(nd->domain))
		return !onnx_contrib_known(nd->op_type);
	if (!is_default_domain(nd->domain))
		return true;
	int64_t since;
	int act = onnx_op_version(nd->op_type, L->g->opset, &since);
	if (act < 0 && onnx_contrib_onnx_domain(nd->op_type))
		return false;
	return act < 0 || act == UA_unsupported;
}

/* Distinct unsupported ops listed (more are counted, not searched: the
 * scan stays linear on hostile models) and the message's length, leaving
 * room for the file name in the Diag's line. */
#define UNSUP_MAX 64
#define UNSUP_MSG 640

static int check_supported(Loader *L, const Onnx__GraphProto *gp)
{
	Unsup u[UNSUP_MAX];
	int nu = 0;
	long more = 0;      /* nodes of ops beyond UNSUP_MAX distinct ones */
	for (size_t i = 0; i < gp->n_node; i++) {
		const Onnx__NodeProto *nd = gp->node[i];
		if (!node_unsupported(L, nd))
			continue;
		const char *dom = is_default_domain(nd->domain) ? NULL : nd->domain;
		int k = 0;
		while (k < nu && !(!strcmp(u[k].op, nd->op_type) &&
		                   (dom ? u[k].domain && !strcmp(u[k].domain, dom) : !u[k].domain)))
			k++;
		if (k == nu && nu == UNSUP_MAX) {
			more++;
			continue;
		}
		if (k == nu)
			u[nu++] = (Unsup){ dom, nd->op_type, nd->name && nd->name[0] ? nd->name : NULL, 0 };
		u[k].count++;
	}
	if (!nu)
		return 0;
	/* "Conv (opset 13) x3 (first node 'c1'), com.microsoft.FusedMatMul x1 (node 'f')" */
	char msg[UNSUP_MSG + 64] = "";
	size_t len = 0;
	int shown = 0;
	for (; shown < nu; shown++) {
		char item[512], first[200] = "";
		const Unsup *e = &u[shown];
		if (e->first)
			snprintf(first, sizeof first, " (%snode '%.150s')", e->count > 1 ? "first " : "",
			         e->first);
		if (e->domain)
			snprintf(item, sizeof item, "%.100s.%.100s x%ld%s", e->domain, e->op, e->count, first);
		else
			snprintf(item, sizeof item, "%.100s (opset %lld) x%ld%s", e->op,
			         (long long)L->g->opset, e->count, first);
		size_t n = strlen(item) + (shown ? 2 : 0);
		if (len + n > UNSUP_MSG)
			break;
		snprintf(msg + len, sizeof msg - len, "%s%s", shown ? ", " : "", item);
		len += n;
	}
	if (more)
		snprintf(msg + len, sizeof msg - len, "%s... and more", shown ? ", " : "");
	else if (shown < nu)
		snprintf(msg + len, sizeof msg - len, "%s... (%d more ops)", shown ? ", " : "",
		         nu - shown);
	return diag_fail(L->diag, "%s: unsupported ops: %s", L->file, msg);
}

/* ---- topological order -------------------------------------------------- */

/* The import order of the nodes: each after the producers of its inputs.
 * Depth-first, visiting the nodes in file order and, before a node, the
 * producers of its inputs (an explicit stack, so deep graphs cannot
 * overflow it): an already sorted graph keeps its order exactly.  Linear
 * in nodes + inputs.  A cycle is an error naming a node on it. */
static int topo_order(Loader *L, const Onnx__GraphProto *gp, int32_t *order)
{
	int32_t n = (int32_t)gp->n_node;
	NameTab prod = { 0 };    /* output name -> producing node */
	for (int32_t i = 0; i < n; i++) {
		const Onnx__NodeProto *nd = gp->node[i];
		if (!nd || (nd->n_output && !nd->output))
			continue;
		for (size_t k = 0; k < nd->n_output; k++)
			if (nd->output[k] && nd->output[k][0] && names_get(&prod, nd->output[k]) < 0)
				names_put(&prod, nd->output[k], i);
	}
	uint8_t *state = calloc((size_t)n + 1, 1);     /* 0 new, 1 on the stack, 2 done */
	int32_t *stk = malloc(((size_t)n + 1) * sizeof *stk);
	size_t *pos = malloc(((size_t)n + 1) * sizeof *pos);   /* next input to look at */
	if (!state || !stk || !pos)
		abort();
	int32_t no = 0, cyc = -1;
	for (int32_t root = 0; root < n && cyc < 0; root++) {
		if (state[root])
			continue;
		int32_t sp = 0;
		stk[sp++] = root;
		state[root] = 1;
		pos[root] = 0;
		while (sp > 0 && cyc < 0) {
			int32_t i = stk[sp - 1];
			const Onnx__NodeProto *nd = gp->node[i];
			size_t nin = nd && (nd->input || !nd->n_input) ? nd->n_input : 0;
			int32_t next = -1;
			while (pos[i] < nin && next < 0) {
				const char *in = nd->input[pos[i]++];
				int32_t p = in && in[0] ? names_get(&prod, in) : -1;
				if (p < 0 || state[p] == 2)
					continue;
				if (state[p] == 1) {
					cyc = p;
					break;
				}
				next = p;
			}
			if (next >= 0) {
				state[next] = 1;
				pos[next] = 0;
				stk[sp++] = next;
			} else if (cyc < 0) {
				state[i] = 2;
				order[no++] = i;
				sp--;
			}
		}
	}
	free(state);
	free(stk);
	free(pos);
	free(prod.slots);
	if (cyc >= 0) {
		char name[300], where[700];
		node_where(gp->node[cyc], cyc, name, sizeof name, where, sizeof where);
		return diag_fail(L->diag, "%s: %s is on a cycle: it depends on its own output",
		                 L->file, where);
	}
	return 0;
}

/* ---- model -------------------------------------------------------------- */

static int check_opset(Loader *L, const Onnx__ModelProto *m)
{
	bool found = false;
	for (size_t i = 0; i < m->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *os = m->opset_import ? m->opset_import[i] : NULL;
		if (!os || !is_default_domain(os->domain))
			continue;
		int64_t v = os->has_version ? os->version : 0;
		if (v < OPSET_MIN || v > OPSET_MAX)
			return diag_fail(L->diag, "%s: opset version %lld of the default domain is not supported (kiln knows %d-%d)",
			                 L->file, (long long)v, OPSET_MIN, OPSET_MAX);
		/* two imports of the default domain at different versions:
		 * which one the ops follow would be a guess (kiln took the
		 * first silently); the same version twice is harmless */
		if (found && L->g->opset != v)
			return diag_fail(L->diag, "%s: the model imports the default domain twice, as opset %lld and %lld",
			                 L->file, (long long)L->g->opset, (long long)v);
		L->g->opset = v;
		found = true;
	}
	if (!found)
		return diag_fail(L->diag, "%s: the model imports no opset of the default domain",
		                 L->file);
	for (size_t i = 0; i < m->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *os = m->opset_import ? m->opset_import[i] : NULL;
		if (os && is_ms_domain(os->domain) && os->has_version && os->version != 1)
			return diag_fail(L->diag, "%s: opset version %lld of domain %s is not supported (kiln knows 1)",
			                 L->file, (long long)os->version, MS_DOMAIN);
	}
	return 0;
}

static int load_graph(Loader *L, const Onnx__GraphProto *gp)
{
	Graph *g = L->g;
	if ((gp->n_initializer && !gp->initializer) || (gp->n_input && !gp->input) ||
	    (gp->n_node && !gp->node) || (gp->n_output && !gp->output))
		return diag_fail(L->diag, "%s: malformed graph", L->file);
	if (gp->n_sparse_initializer)
		return diag_fail(L->diag, "%s: sparse initializers are not supported", L->file);
	for (size_t i = 0; i < gp->n_initializer; i++) {
		const Onnx__TensorProto *t = gp->initializer[i];
		char what[300];
		if (!t || !t->name || !t->name[0])
			return diag_fail(L->diag, "%s: initializer %zu has no name", L->file, i);
		snprintf(what, sizeof what, "initializer '%s'", t->name);
		ValId v = tensor_const(L, t, t->name, what);
		if (v < 0 || define_name(L, what, v))
			return -1;
	}
	for (size_t i = 0; i < gp->n_input; i++)
		if (load_input(L, gp->input[i], (int)i))
			return -1;
	if (gp->n_node > INT32_MAX - 1)
		return diag_fail(L->diag, "%s: too many nodes", L->file);
	if (check_supported(L, gp))
		return -1;
	int32_t *order = malloc((gp->n_node + 1) * sizeof *order);
	if (!order)
		abort();
	int rc = topo_order(L, gp, order);
	for (size_t i = 0; i < gp->n_node && !rc; i++)
		rc = load_node(L, gp->node[order[i]], order[i]);
	free(order);
	if (rc)
		return -1;
	if (gp->n_output == 0)
		return diag_fail(L->diag, "%s: the graph has no outputs", L->file);
	ValId *outs = ir_arena_alloc(g->arena, gp->n_output * sizeof *outs, _Alignof(ValId));
	for (size_t i = 0; i < gp->n_output; i++) {
		const Onnx__ValueInfoProto *vi = gp->output[i];
		if (!vi || !vi->name || !vi->name[0])
			return diag_fail(L->diag, "%s: graph output %zu has no name", L->file, i);
		outs[i] = names_get(&L->names, vi->name);
		if (outs[i] < 0)
			return diag_fail(L->diag, "%s: graph output '%s' is not defined", L->file, vi->name);
	}
	g->outputs = outs;
	g->noutputs = (int32_t)gp->n_output;
	return 0;
}

Graph *onnx_load_buffer(const void *buf, size_t len, const char *name, const char *dir, Diag *diag)
{
	const char *file = name ? name : "<memory>";
	if (!buf || len == 0) {
		diag_fail(diag, "%s: not an ONNX model (empty file)", file);
		return NULL;
	}
	/* protobuf-c recurses without a limit and truncates strings at a NUL */
	if (pb_guard(buf, len, &onnx__model_proto__descriptor, file, "ONNX model", diag))
		return NULL;
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
	if (!m) {
		diag_fail(diag, "%s: not an ONNX model (protobuf parse failed)", file);
		return NULL;
	}
	if (!m->graph) {
		onnx__model_proto__free_unpacked(m, NULL);
		diag_fail(diag, "%s: not an ONNX model (no graph)", file);
		return NULL;
	}
	Loader L = { .file = file, .dir = dir, .diag = diag };
	L.g = ir_graph_new(m->graph->name && m->graph->name[0] ? m->graph->name : NULL);
	L.g->file = ir_arena_strdup(L.g->arena, file);
	L.maps = calloc(1, sizeof *L.maps);
	if (!L.maps)
		abort();
	L.g->release = mappings_release;
	L.g->release_arg = L.maps;
	int rc = check_opset(&L, m);
	if (!rc)
		rc = load_graph(&L, m->graph);
	free(L.names.slots);
	free(L.realdir);
	onnx__model_proto__free_unpacked(m, NULL);
	if (rc) {
		ir_graph_free(L.g);
		return NULL;
	}
	return L.g;
}

Graph *onnx_load_file(const char *path, Diag *diag)
{
	if (!path) {
		diag_fail(diag, "<null>: no model file given");
		return NULL;
	}
	void *buf;
	size_t len;
	/* onnx_read_file refuses directories, devices and FIFOs */
	if (onnx_read_file(path, &buf, &len, diag))
		return NULL;
	/* external data is relative to the model's folder */
	const char *slash = strrchr(path, '/');
	char *dir;
	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		abort();
	Graph *g = onnx_load_buffer(buf, len, path, dir, diag);
	free(dir);
	free(buf);
	return g;
}

/* The op info table and the op schema, generated from ir/ops.def (see its
 * top comment for the row format), and the fused-op attribute slots
 * checked against runtime/fused_attrs.def.
 *
 * ops.def is included once per thing generated, with the item macros
 * (R, O, A, ...) defined differently each time: as counts for the arity,
 * as initializers for the schema tables. */
#include <string.h>

#include "schema.h"

/* ---- arity, counted from the input and output lists --------------------- */

#define TYPES(...)
#define NONE
#define VARIADIC_MARK 1000

enum {
#define R(n, t) +1
#define O(n, t) +0
#define OZ(n, t) +0
#define V(n, t) +1
#define X(name, kind, types, ins, outs, attrs) MININ_##name = 0 ins, MINOUT_##name = 0 outs,
#include "ops.def"
#undef X
#undef R
#undef O
#undef OZ
#undef V
};

enum {
#define R(n, t) +1
#define O(n, t) +1
#define OZ(n, t) +1
#define V(n, t) +VARIADIC_MARK
#define X(name, kind, types, ins, outs, attrs) MAXIN_##name = 0 ins, MAXOUT_##name = 0 outs,
#include "ops.def"
#undef X
#undef R
#undef O
#undef OZ
#undef V
};

#define MAXN(m) ((m) >= VARIADIC_MARK ? -1 : (int8_t)(m))   /* cast: clang warns on the unused arm */

const OpInfo ir_opinfo[OP_COUNT] = {
#define X(name, kind, types, ins, outs, attrs) \
	{ #name, MININ_##name, MAXN(MAXIN_##name), MINOUT_##name, MAXN(MAXOUT_##name), kind },
#include "ops.def"
#undef X
};

/* ---- fused-op slots: as many int and float attributes in ops.def as
 * FUSED_I and FUSED_F rows in runtime/fused_attrs.def ---------------------- */

#define KIND_IS_INT_INT 1
#define KIND_IS_INT_FLOAT 0
#define KIND_IS_INT_STRING 0
#define KIND_IS_INT_INTS 0
#define KIND_IS_INT_FLOATS 0
#define KIND_IS_INT_STRINGS 0
#define KIND_IS_INT_TENSOR 0
#define KIND_IS_FLOAT_INT 0
#define KIND_IS_FLOAT_FLOAT 1
#define KIND_IS_FLOAT_STRING 0
#define KIND_IS_FLOAT_INTS 0
#define KIND_IS_FLOAT_FLOATS 0
#define KIND_IS_FLOAT_STRINGS 0
#define KIND_IS_FLOAT_TENSOR 0

enum {
#define A(n, k, d, c) +KIND_IS_INT_##k
#define AR(n, k, c) +KIND_IS_INT_##k
#define AL(n, k, d, c) +KIND_IS_INT_##k
#define X(name, kind, types, ins, outs, attrs) NINT_##name = 0 attrs,
#include "ops.def"
#undef X
#undef A
#undef AR
#undef AL
};

enum {
#define A(n, k, d, c) +KIND_IS_FLOAT_##k
#define AR(n, k, c) +KIND_IS_FLOAT_##k
#define AL(n, k, d, c) +KIND_IS_FLOAT_##k
#define X(name, kind, types, ins, outs, attrs) NFLOAT_##name = 0 attrs,
#include "ops.def"
#undef X
#undef A
#undef AR
#undef AL
};

/* the slot lists' lengths, without the backend's own slots */
enum {
#define FUSED_OP(op) SLOTI_##op##_BEGIN_ = -1,
#define FUSED_I(op, name) SLOTI_##op##_##name,
#define FUSED_B(op, name)
#define FUSED_F(op, name)
#define FUSED_END(op) NSLOTI_##op,
#include "../runtime/fused_attrs.def"
#undef FUSED_OP
#undef FUSED_I
#undef FUSED_F
#undef FUSED_END
#define FUSED_OP(op) SLOTF_##op##_BEGIN_ = -1,
#define FUSED_I(op, name)
#define FUSED_F(op, name) SLOTF_##op##_##name,
#define FUSED_END(op) NSLOTF_##op,
#include "../runtime/fused_attrs.def"
#undef FUSED_OP
#undef FUSED_I
#undef FUSED_F
#undef FUSED_END
};

#define FUSED_OP(op)
#define FUSED_I(op, name)
#define FUSED_F(op, name)
#define FUSED_END(op) \
	_Static_assert((int)NSLOTI_##op == (int)NINT_##op && (int)NSLOTF_##op == (int)NFLOAT_##op, \
	               "ops.def's int/float attributes of " #op " differ from runtime/fused_attrs.def");
#include "../runtime/fused_attrs.def"
#undef FUSED_OP
#undef FUSED_I
#undef FUSED_F
#undef FUSED_END

/* every slot by name, for ir_fused_slot */
static const struct { Op op; const char *name; bool isfloat; int slot; } slots[] = {
#define FUSED_OP(op)
#define FUSED_I(op, name) { OP_##op, #name, false, SLOTI_##op##_##name },
#define FUSED_F(op, name) { OP_##op, #name, true, SLOTF_##op##_##name },
#define FUSED_END(op)
#include "../runtime/fused_attrs.def"
#undef FUSED_OP
#undef FUSED_I
#undef FUSED_F
#undef FUSED_END
};
#undef FUSED_B

int ir_fused_slot(Op op, const char *name, bool *isfloat)
{
	for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
		if (slots[i].op == op && !strcmp(slots[i].name, name)) {
			*isfloat = slots[i].isfloat;
			return slots[i].slot;
		}
	return -1;
}

/* ---- the schema table ---------------------------------------------------- */

#undef TYPES
#undef NONE
#define TYPES(...) { __VA_ARGS__ }
#define NONE
#define R(n, t) { #n, IO_REQ, IRT_##t },
#define O(n, t) { #n, IO_OPT, IRT_##t },
#define OZ(n, t) { #n, IO_OFF, IRT_##t },
#define V(n, t) { #n, IO_VAR, IRT_##t },
#define ANY AC_ANY, 0, 0, NULL
#define RANGE(lo, hi) AC_RANGE, lo, hi, NULL
#define ONEOF(s) AC_ONEOF, 0, 0, s
#define DTYPE AC_DTYPE, 0, 0, NULL
#define A(n, k, d, c) { #n, A_##k, false, false, d, c },
#define AR(n, k, c) { #n, A_##k, true, false, NULL, c },
#define AL(n, k, d, c) { #n, A_##k, false, true, d, c },
/* lists end with an empty entry (C has no empty initializer lists); the
 * counts leave it out */
#define LIST(T, ...) (const T[]){ __VA_ARGS__ { 0 } }
#define COUNT(T, ...) (int)(sizeof((const T[]){ __VA_ARGS__ { 0 } }) / sizeof(T) - 1)

static const IrOpSchema schemas[OP_COUNT] = {
#define X(name, kind, types, ins, outs, attrs) \
	[OP_##name] = { #name, LIST(IrIoSchema, ins), LIST(IrIoSchema, outs), \
	                COUNT(IrIoSchema, ins), COUNT(IrIoSchema, outs), types, \
	                LIST(IrAttrSchema, attrs), COUNT(IrAttrSchema, attrs) },
#include "ops.def"
#undef X
};

const IrOpSchema *ir_schema(Op op)
{
	if ((int)op < 0 || op >= OP_COUNT)
		return NULL;
	return &schemas[op];
}

const IrAttrSchema *ir_schema_attr(Op op, const char *name)
{
	const IrOpSchema *s = ir_schema(op);
	if (!s || !name)
		return NULL;
	for (int i = 0; i < s->nattrs; i++)
		if (!strcmp(s->attrs[i].name, name))
			return &s->attrs[i];
	return NULL;
}

#undef X
#undef TYPES
#undef NONE
#undef R
#undef O
#undef OZ
#undef V
#undef ANY
#undef RANGE
#undef ONEOF
#undef DTYPE
#undef A
#undef AR
#undef AL
#undef LIST
#undef COUNT

/* ---- printing helpers ----------------------------------------------------- */

static const DType all_dtypes[] = {
	DT_F32, DT_F64, DT_F16, DT_BF16, DT_I8, DT_I16, DT_I32, DT_I64,
	DT_U8, DT_U16, DT_U32, DT_U64, DT_BOOL, DT_STRING,
};

int ir_typeset_str(IrTypeSet s, char *buf, size_t n)
{
	size_t len = 0;
	if (n)
		buf[0] = 0;
	for (size_t i = 0; i < sizeof all_dtypes / sizeof all_dtypes[0]; i++) {
		if (!(s & TS_(all_dtypes[i])))
			continue;
		int w = snprintf(buf + len, len < n ? n - len : 0, "%s%s", len ? "|" : "",
		                 ir_dtype_name(all_dtypes[i]));
		len += w > 0 ? (size_t)w : 0;
	}
	if (!len)
		len = (size_t)snprintf(buf, n, "none");
	return (int)len;
}

const char *ir_attr_kind_name(AttrKind k)
{
	static const char *const names[] = { "int", "float", "string", "ints", "floats", "strings",
	                                     "tensor" };
	return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

/* ---- attribute values ------------------------------------------------------- */

/* Is word one of the '|'-separated words of list? */
static bool one_of(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, '|');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == wl && !strncmp(p, word, l))
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

int ir_schema_attr_ok(const IrAttrSchema *as, const Attr *a, char *why, size_t n)
{
	if (a->kind != as->kind) {
		snprintf(why, n, "is of type %s, must be %s", ir_attr_kind_name((AttrKind)a->kind),
		         ir_attr_kind_name((AttrKind)as->kind));
		return -1;
	}
	switch (as->check) {
	case AC_RANGE:
		if (a->u.i < as->lo || a->u.i > as->hi) {
			if (as->lo == as->hi)
				snprintf(why, n, "is %lld; kiln implements only %lld", (long long)a->u.i,
				         (long long)as->lo);
			else
				snprintf(why, n, "is %lld; kiln implements %lld to %lld", (long long)a->u.i,
				         (long long)as->lo, (long long)as->hi);
			return -1;
		}
		return 0;
	case AC_ONEOF:
		if (!a->u.s || !one_of(as->oneof, a->u.s)) {
			snprintf(why, n, "is \"%s\"; kiln implements %s", a->u.s ? a->u.s : "",
			         as->oneof);
			return -1;
		}
		return 0;
	case AC_DTYPE:
		if (a->u.i <= 0 || a->u.i > 255 || ir_dtype_size((DType)a->u.i) == 0) {
			snprintf(why, n, "is %lld, not a dtype kiln has", (long long)a->u.i);
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* ---- self-check ----------------------------------------------------------------- */

static int check_ios(const IrOpSchema *s, const IrIoSchema *io, int cnt, const char *what,
                     Diag *d)
{
	for (int i = 0; i < cnt; i++) {
		if (!io[i].name || !io[i].name[0])
			return diag_fail(d, "schema of %s: %s %d has no name", s->name, what, i);
		if (io[i].tv >= IR_NTYPEVARS || !s->types[io[i].tv])
			return diag_fail(d, "schema of %s: %s '%s' uses an undeclared type variable",
			                 s->name, what, io[i].name);
		if (io[i].kind == IO_VAR && i != cnt - 1)
			return diag_fail(d, "schema of %s: variadic %s '%s' is not the last", s->name,
			                 what, io[i].name);
		if (i && io[i].kind == IO_REQ && io[i - 1].kind != IO_REQ)
			return diag_fail(d, "schema of %s: required %s '%s' after an optional one",
			                 s->name, what, io[i].name);
		for (int j = 0; j < i; j++)
			if (!strcmp(io[j].name, io[i].name))
				return diag_fail(d, "schema of %s: %s name '%s' repeats", s->name, what,
				                 io[i].name);
	}
	return 0;
}

static int check_attrs(Op op, const IrOpSchema *s, Diag *d)
{
	for (int i = 0; i < s->nattrs; i++) {
		const IrAttrSchema *a = &s->attrs[i];
		for (int j = 0; j < i; j++)
			if (!strcmp(s->attrs[j].name, a->name))
				return diag_fail(d, "schema of %s: attribute '%s' repeats", s->name, a->name);
		if (a->required && a->dflt)
			return diag_fail(d, "schema of %s: required attribute '%s' has a default",
			                 s->name, a->name);
		if ((a->check == AC_RANGE || a->check == AC_DTYPE) && a->kind != A_INT)
			return diag_fail(d, "schema of %s: attribute '%s': check does not fit its kind",
			                 s->name, a->name);
		if (a->check == AC_ONEOF && a->kind != A_STRING)
			return diag_fail(d, "schema of %s: attribute '%s': ONEOF needs a string",
			                 s->name, a->name);
		bool isf = false;
		int slot = ir_fused_slot(op, a->name, &isf);
		bool want = ir_opinfo[op].kind == K_FUSED && (a->kind == A_INT || a->kind == A_FLOAT);
		if (want != (slot >= 0) || (want && isf != (a->kind == A_FLOAT)))
			return diag_fail(d, "schema of %s: attribute '%s' %s a slot in runtime/fused_attrs.def",
			                 s->name, a->name, want ? "lacks" : "has");
	}
	return 0;
}

int ir_schema_check(Diag *d)
{
	for (int op = 0; op < OP_COUNT; op++) {
		const IrOpSchema *s = &schemas[op];
		const OpInfo *oi = &ir_opinfo[op];
		if (!s->name || !oi->name || strcmp(s->name, oi->name))
			return diag_fail(d, "op %d (%s) has no schema", op, oi->name ? oi->name : "?");
		if (check_ios(s, s->in, s->nin, "input", d) || check_ios(s, s->out, s->nout, "output", d) ||
		    check_attrs((Op)op, s, d))
			return -1;
		if (s->nin < 1 || s->nout < 1)
			return diag_fail(d, "schema of %s: no inputs or no outputs", s->name);
	}
	return 0;
}

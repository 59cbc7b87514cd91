/* emit_fn.c: sharing of identical node functions and module constants.
 *
 * Every live node is emitted as a function of its own (emit.c): the data
 * pointers of its inputs and outputs and its name for messages are
 * parameters, everything else (dims from f->sym, strides, attributes) is
 * in its body.  Nodes of the same shape and kind (the layers of a
 * transformer, a chain of elementwise ops) then build the same function,
 * and LLVM should optimize and compile it once: be_fn_share keeps one
 * function per structure.  The structure is a canonical word string of the
 * function: per instruction its opcode, result type, operands (arguments,
 * instructions and blocks by position in the function, everything else,
 * i.e. constants, globals and callees, by identity: LLVM uniques them per
 * context), and whatever else the instruction carries (predicates, flags,
 * alignment, element types, call-site attributes, metadata).  Two
 * functions with the same string compute the same thing.
 *
 * The same table (BeTab: byte strings to values) interns the module's
 * constant strings and attribute arrays, so that the functions of two
 * nodes refer to the same globals. */
#include <stdlib.h>
#include <string.h>

#include "be.h"

typedef struct TabEnt {
	uint64_t hash;
	unsigned char *key;   /* NULL: free slot */
	size_t len;
	LLVMValueRef val;
} TabEnt;

struct BeTab {
	TabEnt *e;
	size_t cap, n;
};

static uint64_t fnv(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ull;
	return h;
}

static TabEnt *tab_slot(BeTab *t, uint64_t h, const void *key, size_t len)
{
	size_t i = (size_t)h & (t->cap - 1);
	for (;;) {
		TabEnt *e = &t->e[i];
		if (!e->key || (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0))
			return e;
		i = (i + 1) & (t->cap - 1);
	}
}

static void tab_grow(BeTab *t)
{
	BeTab nt = {.cap = t->cap ? t->cap * 2 : 1024};
	nt.e = calloc(nt.cap, sizeof *nt.e);
	if (!nt.e)
		abort();
	for (size_t i = 0; i < t->cap; i++)
		if (t->e[i].key)
			*tab_slot(&nt, t->e[i].hash, t->e[i].key, t->e[i].len) = t->e[i];
	nt.n = t->n;
	free(t->e);
	*t = nt;
}

LLVMValueRef be_tab_get(BeTab **tp, const void *key, size_t len)
{
	BeTab *t = *tp;
	if (!t)
		return NULL;
	TabEnt *e = tab_slot(t, fnv(key, len), key, len);
	return e->key ? e->val : NULL;
}

void be_tab_put(BeTab **tp, const void *key, size_t len, LLVMValueRef val)
{
	if (!*tp) {
		*tp = calloc(1, sizeof **tp);
		if (!*tp)
			abort();
	}
	BeTab *t = *tp;
	if (2 * (t->n + 1) > t->cap)
		tab_grow(t);
	uint64_t h = fnv(key, len);
	TabEnt *e = tab_slot(t, h, key, len);
	if (!e->key) {
		e->key = malloc(len ? len : 1);
		if (!e->key)
			abort();
		memcpy(e->key, key, len);
		e->len = len;
		e->hash = h;
		t->n++;
	}
	e->val = val;
}

void be_tab_free(BeTab **tp)
{
	BeTab *t = *tp;
	if (!t)
		return;
	for (size_t i = 0; i < t->cap; i++)
		free(t->e[i].key);
	free(t->e);
	free(t);
	*tp = NULL;
}

/* ---- the canonical string of a function ---- */

typedef struct Words {
	uint64_t *w;
	size_t n, cap;
} Words;

static void put(Words *s, uint64_t x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		s->w = realloc(s->w, s->cap * sizeof *s->w);
		if (!s->w)
			abort();
	}
	s->w[s->n++] = x;
}

static void put_ptr(Words *s, const void *p)
{
	put(s, (uint64_t)(uintptr_t)p);
}

/* Positions of the function's blocks and instructions (pointer -> index). */
typedef struct PosMap {
	const void **k;
	uint64_t *v;
	size_t cap;
} PosMap;

static size_t pos_slot(const PosMap *m, const void *p)
{
	size_t i = (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) & (m->cap - 1);
	while (m->k[i] && m->k[i] != p)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void pos_put(PosMap *m, const void *p, uint64_t v)
{
	size_t i = pos_slot(m, p);
	m->k[i] = p;
	m->v[i] = v;
}

/* Index + 1 of p, 0 if it is not the function's. */
static uint64_t pos_get(const PosMap *m, const void *p)
{
	size_t i = pos_slot(m, p);
	return m->k[i] ? m->v[i] + 1 : 0;
}

enum { TAG_ARG = 1, TAG_INST, TAG_BLOCK, TAG_OTHER, TAG_END };

static void put_operand(Words *s, const PosMap *m, LLVMValueRef fn, LLVMValueRef v)
{
	if (LLVMValueIsBasicBlock(v)) {
		put(s, TAG_BLOCK);
		put(s, pos_get(m, LLVMValueAsBasicBlock(v)));
		return;
	}
	if (LLVMIsAArgument(v)) {
		unsigned n = LLVMCountParams(fn);
		for (unsigned i = 0; i < n; i++)
			if (LLVMGetParam(fn, i) == v) {
				put(s, TAG_ARG);
				put(s, i);
				return;
			}
	}
	uint64_t ix = LLVMIsAInstruction(v) ? pos_get(m, v) : 0;
	if (ix) {
		put(s, TAG_INST);
		put(s, ix);
	} else {
		put(s, TAG_OTHER);   /* constant, global, function: uniqued */
		put_ptr(s, v);
	}
}

static void put_attrs_call(Words *s, LLVMValueRef c)
{
	unsigned nargs = LLVMGetNumArgOperands(c);
	for (long idx = -1; idx <= (long)nargs; idx++) {
		LLVMAttributeIndex ai = idx < 0 ? (LLVMAttributeIndex)LLVMAttributeFunctionIndex : (LLVMAttributeIndex)idx;
		unsigned n = LLVMGetCallSiteAttributeCount(c, ai);
		put(s, n);
		if (!n)
			continue;
		LLVMAttributeRef *a = malloc(n * sizeof *a);
		if (!a)
			abort();
		LLVMGetCallSiteAttributes(c, ai, a);
		for (unsigned i = 0; i < n; i++)
			put_ptr(s, a[i]);   /* attributes are uniqued per context */
		free(a);
	}
	put(s, LLVMGetTailCallKind(c));
	put_ptr(s, LLVMGetCalledFunctionType(c));
}

/* What an instruction carries besides its operands. */

/* The "llvm.loop" metadata kind: a loop ID is a distinct node (it refers
 * to itself), so two loops with the same hints have different IDs; the
 * only IDs are be_loop_end's, whose operand count says which hints. */
static unsigned loop_kind(LLVMValueRef in)
{
	return LLVMGetMDKindIDInContext(LLVMGetTypeContext(LLVMTypeOf(in)), "llvm.loop", 9);
}

static void put_extras(Words *s, LLVMValueRef in, LLVMOpcode op)
{
	switch (op) {
	case LLVMICmp: put(s, LLVMGetICmpPredicate(in)); break;
	case LLVMFCmp: put(s, LLVMGetFCmpPredicate(in)); break;
	case LLVMGetElementPtr:
		put_ptr(s, LLVMGetGEPSourceElementType(in));
		put(s, LLVMIsInBounds(in));
		break;
	case LLVMLoad: case LLVMStore:
		put(s, LLVMGetAlignment(in));
		put(s, LLVMGetVolatile(in));
		put(s, LLVMGetOrdering(in));
		break;
	case LLVMAlloca:
		put_ptr(s, LLVMGetAllocatedType(in));
		put(s, LLVMGetAlignment(in));
		break;
	case LLVMCall: put_attrs_call(s, in); break;
	case LLVMAdd: case LLVMSub: case LLVMMul: case LLVMShl:
		put(s, (uint64_t)LLVMGetNUW(in) << 1 | (uint64_t)LLVMGetNSW(in));
		break;
	case LLVMSDiv: case LLVMUDiv: case LLVMLShr: case LLVMAShr:
		put(s, LLVMGetExact(in));
		break;
	case LLVMOr: put(s, LLVMGetIsDisjoint(in)); break;
	case LLVMZExt: put(s, LLVMGetNNeg(in)); break;
	case LLVMExtractValue: case LLVMInsertValue: {
		unsigned n = LLVMGetNumIndices(in);
		const unsigned *ix = LLVMGetIndices(in);
		put(s, n);
		for (unsigned i = 0; i < n; i++)
			put(s, ix[i]);
		break;
	}
	default: break;
	}
	if (LLVMCanValueUseFastMathFlags(in))
		put(s, LLVMGetFastMathFlags(in));
	size_t nmd = 0;
	LLVMValueMetadataEntry *md = LLVMInstructionGetAllMetadataOtherThanDebugLoc(in, &nmd);
	put(s, nmd);
	for (unsigned i = 0; i < nmd; i++) {
		unsigned kind = LLVMValueMetadataEntriesGetKind(md, i);
		LLVMMetadataRef v = LLVMValueMetadataEntriesGetMetadata(md, i);
		put(s, kind);
		if (kind == loop_kind(in))   /* distinct per loop: be_loop_end's hints, by count */
			put(s, LLVMGetMDNodeNumOperands(LLVMMetadataAsValue(LLVMGetTypeContext(LLVMTypeOf(in)), v)));
		else
			put_ptr(s, v);
	}
	if (md)
		LLVMDisposeValueMetadataEntries(md);
}

static void put_inst(Words *s, const PosMap *m, LLVMValueRef fn, LLVMValueRef in)
{
	LLVMOpcode op = LLVMGetInstructionOpcode(in);
	put(s, op);
	put_ptr(s, LLVMTypeOf(in));
	int n = LLVMGetNumOperands(in);
	put(s, (uint64_t)n);
	for (int k = 0; k < n; k++)
		put_operand(s, m, fn, LLVMGetOperand(in, (unsigned)k));
	if (op == LLVMPHI) {
		unsigned ni = LLVMCountIncoming(in);
		for (unsigned k = 0; k < ni; k++)
			put(s, pos_get(m, LLVMGetIncomingBlock(in, k)));
	}
	put_extras(s, in, op);
}

static void fn_words(LLVMValueRef fn, Words *s)
{
	size_t count = 0;
	for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
		for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in))
			count++;
	count += LLVMCountBasicBlocks(fn);
	PosMap m = {.cap = 16};
	while (m.cap < 2 * count + 2)
		m.cap *= 2;
	m.k = calloc(m.cap, sizeof *m.k);
	m.v = calloc(m.cap, sizeof *m.v);
	if (!m.k || !m.v)
		abort();
	uint64_t nb = 0, ni = 0;
	for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb)) {
		pos_put(&m, bb, nb++);
		for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in))
			pos_put(&m, in, ni++);
	}
	put_ptr(s, LLVMGlobalGetValueType(fn));
	unsigned na = LLVMGetAttributeCountAtIndex(fn, LLVMAttributeFunctionIndex);
	put(s, na);
	put(s, (uint64_t)LLVMGetLinkage(fn));
	for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb)) {
		put(s, TAG_BLOCK);
		for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in))
			put_inst(s, &m, fn, in);
	}
	put(s, TAG_END);
	free(m.k);
	free(m.v);
}

LLVMValueRef be_fn_share(Be *be, LLVMValueRef fn, bool *shared)
{
	Words s = {0};
	put(&s, 'F');   /* apart from the strings and arrays of the same table */
	fn_words(fn, &s);
	size_t len = s.n * sizeof *s.w;
	LLVMValueRef old = be_tab_get(&be->tab, s.w, len);
	*shared = old != NULL;
	if (old)
		LLVMDeleteFunction(fn);
	else
		be_tab_put(&be->tab, s.w, len, fn);
	free(s.w);
	return old ? old : fn;
}

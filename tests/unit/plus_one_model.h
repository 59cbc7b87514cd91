/* plus_one_model.h: C source text of a hand-written model, y = x + 1 over
 * one symbolic dim n (the 1: its 4 bytes of weights), for the unit tests
 * that build and load a model kiln did not compile (test_rt_context.c: the
 * loader's checks; test_profile.c: a model from before the profiler).
 * A test's source is its includes, PLUS_ONE_DECLS, PLUS_ONE_RUN(FIRST)
 * (FIRST: a statement to begin each run with, or "") and its own
 * descriptor (desc fields: io, io + 1, dims, syms, one, plan, shapes, run). */
#ifndef KILN_TESTS_PLUS_ONE_MODEL_H
#define KILN_TESTS_PLUS_ONE_MODEL_H

#define PLUS_ONE_DECLS \
	"int rt_op_Add(kiln_frame *, const char *, const rt_t *, int32_t, rt_t *, int32_t,\n" \
	"              const int64_t *, int32_t, const float *, int32_t);\n" \
	"static const char *const d[] = { \"n\" };\n" \
	"static const kiln_io_info io[2] = { { \"x\", KILN_F32, 1, d }, { \"y\", KILN_F32, 1, d } };\n" \
	"static const rt_dim dims[KILN_MAX_RANK] = { { 0, 0 } };\n" \
	"static const char *const syms[] = { \"n\" };\n" \
	"static const float one = 1.0f;\n" \
	"static int plan(const int64_t *s, int64_t *b, kiln_frame *f) { (void)s; (void)b; (void)f; return 0; }\n" \
	"static void shapes(const int64_t *s, int64_t *o) { o[0] = s[0]; }\n"

#define PLUS_ONE_RUN(first) \
	"static int run(kiln_frame *f) {\n" \
	first \
	"  rt_t a[2] = { { (void *)f->in[0], KILN_F32, 1, { f->sym[0] } },\n" \
	"                { (void *)f->weights, KILN_F32, 0, { 0 } } };\n" \
	"  rt_t y = { f->out[0], KILN_F32, 1, { f->sym[0] } };\n" \
	"  return rt_op_Add(f, \"plus_one\", a, 2, &y, 1, 0, 0, 0, 0);\n" \
	"}\n"

#endif

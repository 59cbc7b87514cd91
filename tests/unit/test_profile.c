/* test_profile.c: the profiler's C API (kiln.h kiln_context_profile_*) on
 * a model compiled here (text IR -> be_compile -> .so -> kiln_model_load):
 *
 *   y = Relu(MatMul(x [batch, 64], w [64, 256]))   (large enough to run
 *       on the pool's threads)
 *   a = KlnAttention(q [batch, 4, 16], kv [batch, 6, 16], kv), 2 heads of 8
 *
 * Events: one NODE per node and run, in order, on thread 0, inside their
 * RUN; non-overlapping; the node names and ops; flops from this run's
 * shapes (2*M*N*K; 2*B*H*Sq*Sk*(D+Dv)); JOB events on pool threads only;
 * outputs identical with profiling on and off; stop, restart, the trace
 * file with each run's shapes, errors; and a model whose runtime predates
 * the profiler (no kiln_entry_ext): it loads and runs, profiling says why
 * it cannot. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "ir.h"
#include "kiln.h"
#include "be_test.h"
#include "plus_one_model.h"
#include "test_files.h"

static const char *text =
	"graph @prof(%x: f32[batch, 64], %w: f32[64, 256], %q: f32[batch, 4, 16], "
	"%kv: f32[batch, 6, 16]) opset 17 {\n"
	"  %m = MatMul(%x, %w) @\"mm\"\n"
	"  %y = Relu(%m) @\"relu\"\n"
	"  %a = KlnAttention(%q, %kv, %kv) {num_heads = 2, head_size = 8, v_head_size = 8, "
	"scale = 0.35, mask_filter = -10000.0} @\"att\"\n"
	"  return %y, %a\n"
	"}\n";

static const char *const node_names[3] = {"mm", "relu", "att"};
static const char *const node_ops[3] = {"MatMul", "Relu", "KlnAttention"};

static kiln_model *model;

static int setup(void **state)
{
	if (tmp_setup(state))
		return -1;
	BeOptions o = {.out = tmp_path("prof.so"), .emit = BE_EMIT_SO, .opt_level = 2};
	Diag d = {0};
	Graph *g = test_parse(text);
	int rc = be_compile(g, &o, NULL, &d);
	ir_graph_free(g);
	if (rc) {
		fprintf(stderr, "compile: %s\n", d.msg);
		return -1;
	}
	model = kiln_model_load(o.out);
	if (!model)
		fprintf(stderr, "load: %s\n", kiln_load_error());
	return model ? 0 : -1;
}

static int teardown(void **state)
{
	kiln_model_free(model);
	return tmp_teardown(state);
}

typedef struct Io {
	int64_t b;
	float *x, *w, *q, *kv;
	kiln_tensor in[4], out[2];
} Io;

static void io_init(Io *io, int64_t b)
{
	memset(io, 0, sizeof *io);
	io->b = b;
	io->x = malloc((size_t)b * 64 * sizeof(float));
	io->w = malloc(64 * 256 * sizeof(float));
	io->q = malloc((size_t)b * 64 * sizeof(float));
	io->kv = malloc((size_t)b * 96 * sizeof(float));
	assert_true(io->x && io->w && io->q && io->kv);
	for (int64_t i = 0; i < b * 64; i++) {
		io->x[i] = (float)((i * 7) % 13) / 6.0f - 1.0f;
		io->q[i] = (float)((i * 5) % 11) / 5.0f - 1.0f;
	}
	for (int64_t i = 0; i < 64 * 256; i++)
		io->w[i] = (float)((i * 3) % 17) / 8.0f - 1.0f;
	for (int64_t i = 0; i < b * 96; i++)
		io->kv[i] = (float)((i * 11) % 7) / 3.0f - 1.0f;
	io->in[0] = (kiln_tensor){KILN_F32, 2, {b, 64}, io->x, (size_t)b * 64 * 4};
	io->in[1] = (kiln_tensor){KILN_F32, 2, {64, 256}, io->w, 64 * 256 * 4};
	io->in[2] = (kiln_tensor){KILN_F32, 3, {b, 4, 16}, io->q, (size_t)b * 64 * 4};
	io->in[3] = (kiln_tensor){KILN_F32, 3, {b, 6, 16}, io->kv, (size_t)b * 96 * 4};
}

static void io_free(Io *io)
{
	free(io->x), free(io->w), free(io->q), free(io->kv);
}

static void run_ok(kiln_context *c, Io *io)
{
	memset(io->out, 0, sizeof io->out);
	if (kiln_run(c, io->in, 4, io->out, 2))
		fail_msg("run: %s", kiln_last_error(c));
}

/* The events of a profile of runs at batch sizes b[0..nruns); returns
 * the number of Job events. */
static int check_events(kiln_context *c, const int64_t *b, int nruns, int threads)
{
	size_t n = kiln_context_profile_count(c);
	int nodes = 0, runs = 0, jobs = 0;
	int64_t last_end = -1, run_t0[8], run_t1[8];
	kiln_profile_event e;
	/* the RUN events first (they come after thread 0's nodes) */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(kiln_context_profile_event(c, i, &e), 0);
		if (e.kind != KILN_PROFILE_RUN)
			continue;
		assert_int_equal(e.run, runs);
		assert_int_equal(e.node, -1);
		assert_null(e.op);
		run_t0[runs] = e.start_ns;
		run_t1[runs++] = e.start_ns + e.dur_ns;
	}
	assert_int_equal(runs, nruns);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(kiln_context_profile_event(c, i, &e), 0);
		assert_true(e.start_ns >= 0 && e.dur_ns >= 0);
		if (e.kind == KILN_PROFILE_JOB) {
			assert_true(e.thread >= 1 && e.thread < threads);
			assert_true(e.run >= 0 && e.run < nruns);
			assert_string_equal(e.op, node_ops[e.node]);
			assert_true(e.flops == 0);
			jobs++;
			continue;
		}
		if (e.kind != KILN_PROFILE_NODE)
			continue;
		/* in order: run r, node k */
		int r = nodes / 3, k = nodes % 3;
		nodes++;
		assert_int_equal(e.thread, 0);
		assert_int_equal(e.run, r);
		assert_int_equal(e.node, k);
		assert_string_equal(e.name, node_names[k]);
		assert_string_equal(e.op, node_ops[k]);
		assert_null(e.fused_from);
		assert_int_equal(e.nfused, 0);
		assert_true(e.start_ns >= last_end);          /* no overlap on thread 0 */
		last_end = e.start_ns + e.dur_ns;
		assert_true(e.start_ns >= run_t0[r] && last_end <= run_t1[r]);   /* inside its run */
		double want = k == 0 ? 2.0 * (double)b[r] * 256 * 64         /* 2 M N K */
		            : k == 2 ? 2.0 * (double)b[r] * 2 * 4 * 6 * (8 + 8) /* 2 B H Sq Sk (D + Dv) */
		            : 0;
		assert_true(e.flops == want);
	}
	assert_int_equal(nodes, 3 * nruns);
	assert_int_equal((size_t)(nodes + runs + jobs), n);
	/* on 2 threads the worker runs the chunks of the MatMul of 64 rows it
	 * claims before the caller does: maybe none, if it woke late */
	if (threads == 1)
		assert_int_equal(jobs, 0);
	assert_int_equal(kiln_context_profile_event(c, n, &e), -1);
	return jobs;
}

static char *read_all(const char *path)
{
	char *s = test_read_file(path, NULL);
	assert_non_null(s);
	return s;
}

static void test_profile_on_off(void **state)
{
	(void)state;
	for (int threads = 1; threads <= 2; threads++) {
		kiln_context *c = kiln_context_create(model, threads);
		assert_non_null(c);
		Io a, b;
		io_init(&a, 64);
		io_init(&b, 3);
		/* off: nothing recorded */
		run_ok(c, &a);
		assert_int_equal(kiln_context_profile_count(c), 0);
		float *y0 = malloc(a.out[0].nbytes), *a0 = malloc(a.out[1].nbytes);
		assert_true(y0 && a0);
		memcpy(y0, a.out[0].data, a.out[0].nbytes);
		memcpy(a0, a.out[1].data, a.out[1].nbytes);
		/* on: two runs at two batch sizes, the same outputs */
		assert_int_equal(kiln_context_profile_start(c), 0);
		run_ok(c, &a);
		assert_memory_equal(a.out[0].data, y0, a.out[0].nbytes);
		assert_memory_equal(a.out[1].data, a0, a.out[1].nbytes);
		run_ok(c, &b);
		assert_int_equal(kiln_context_profile_stop(c), 0);
		int64_t batches[2] = {64, 3};
		int jobs = check_events(c, batches, 2, threads);
		/* stopped: runs add nothing, the events stay */
		size_t n = kiln_context_profile_count(c);
		run_ok(c, &a);
		assert_int_equal(kiln_context_profile_count(c), n);
		assert_memory_equal(a.out[0].data, y0, a.out[0].nbytes);
		/* the trace has each run's shapes */
		const char *path = tmp_path("trace.json");
		assert_int_equal(kiln_context_profile_write(c, path), 0);
		char *js = read_all(path);
		assert_true(js[0] == '[');
		assert_non_null(strstr(js, "\"name\":\"mm_kernel_time\",\"args\":{\"op_name\":\"MatMul\",\"run\":0,"
		                           "\"input_type_shape\":[{\"float\":[64,64]},{\"float\":[64,256]}],"
		                           "\"output_type_shape\":[{\"float\":[64,256]}],\"flops\":2097152}"));
		assert_non_null(strstr(js, "\"input_type_shape\":[{\"float\":[3,64]},{\"float\":[64,256]}]"));
		assert_non_null(strstr(js, "\"name\":\"att_kernel_time\""));
		/* Job events as the C API lists them (a worker may run none) */
		assert_true((strstr(js, "\"cat\":\"Job\"") != NULL) == (jobs > 0));
		free(js);
		/* a restart clears */
		assert_int_equal(kiln_context_profile_start(c), 0);
		assert_int_equal(kiln_context_profile_count(c), 0);
		run_ok(c, &b);
		assert_int_equal(kiln_context_profile_stop(c), 0);
		int64_t one[1] = {3};
		if (threads == 1)
			check_events(c, one, 1, 1);
		free(y0);
		free(a0);
		io_free(&a);
		io_free(&b);
		kiln_context_free(c);
	}
}

static void test_profile_errors(void **state)
{
	(void)state;
	assert_int_equal(kiln_context_profile_start(NULL), -1);
	assert_int_equal(kiln_context_profile_stop(NULL), -1);
	assert_int_equal(kiln_context_profile_write(NULL, "x"), -1);
	assert_int_equal(kiln_context_profile_count(NULL), 0);
	kiln_profile_event e;
	assert_int_equal(kiln_context_profile_event(NULL, 0, &e), -1);
	kiln_context *c = kiln_context_create(model, 1);
	assert_non_null(c);
	/* never started: an empty trace, no events */
	assert_int_equal(kiln_context_profile_event(c, 0, &e), -1);
	assert_int_equal(kiln_context_profile_write(c, tmp_path("empty.json")), 0);
	char *js = read_all(tmp_path("empty.json"));
	assert_string_equal(js, "[\n\n]\n");
	free(js);
	assert_int_equal(kiln_context_profile_write(c, "/nonexistent/dir/t.json"), -1);
	assert_string_equal(kiln_last_error(c),
	                    "/nonexistent/dir/t.json: cannot write the profile: No such file or directory");
	assert_int_equal(kiln_context_profile_write(c, tmpdir), -1);   /* a folder */
	assert_non_null(strstr(kiln_last_error(c), ": cannot write the profile: "));
	assert_int_equal(kiln_context_profile_write(c, ""), -1);
	kiln_context_free(c);
}

/* A model whose runtime predates the profiler: its own kiln_entry (rt.h's
 * table of ABI version 3), no kiln_entry_ext (entry.c is not linked). */
static const char old_src[] =
	"#include \"rt_internal.h\"\n"
	PLUS_ONE_DECLS
	PLUS_ONE_RUN("")
	"static const rt_model_desc desc = { RT_ABI_VERSION, \"old\", 1, 1, 1, 0, io, io + 1,\n"
	"  dims, syms, 0, 0, 0, 4, (const char *)&one, plan, shapes, run };\n"
	"static const rt_entry e = { RT_ABI_VERSION, &desc, rt_context_create, rt_context_free,\n"
	"  rt_context_run, rt_context_error, rt_context_arena_bytes, rt_create_error };\n"
	"__attribute__((visibility(\"default\"))) const rt_entry *kiln_entry(void) { return &e; }\n";

static void test_model_without_profiler(void **state)
{
	(void)state;
	const char *src = tmp_path("old.c"), *so = tmp_path("old.so");
	FILE *fp = fopen(src, "w");
	assert_non_null(fp);
	fputs(old_src, fp);
	fclose(fp);
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "cc -shared -fPIC -I%s/runtime %s -o %s %s/libkiln_rt.a -lm -lpthread 2>&1",
	         KILN_SOURCE_DIR, src, so, KILN_BINARY_DIR);
	if (system(cmd) != 0) {
		print_message("could not build the old-style model (%s)\n", cmd);
		skip();
	}
	snprintf(cmd, sizeof cmd, "nm -D %s | grep -q kiln_entry_ext", so);
	assert_int_not_equal(system(cmd), 0);      /* really without the extension */
	kiln_model *m = kiln_model_load(so);
	if (!m)
		fail_msg("load: %s", kiln_load_error());
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	assert_int_equal(kiln_context_profile_start(c), -1);
	assert_non_null(strstr(kiln_last_error(c), "compiled without profiling support"));
	float x[3] = {1, 2, 3};
	kiln_tensor in = {KILN_F32, 1, {3}, x, sizeof x}, out = {0};
	assert_int_equal(kiln_run(c, &in, 1, &out, 1), 0);
	assert_true(((float *)out.data)[2] == 4.0f);
	assert_string_equal(kiln_last_error(c), "");        /* the run cleared it */
	assert_int_equal(kiln_context_profile_count(c), 0);
	kiln_profile_event e;
	assert_int_equal(kiln_context_profile_event(c, 0, &e), -1);
	assert_int_equal(kiln_context_profile_write(c, tmp_path("old.json")), -1);
	kiln_context_free(c);
	kiln_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profile_on_off),
		cmocka_unit_test(test_profile_errors),
		cmocka_unit_test(test_model_without_profiler),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

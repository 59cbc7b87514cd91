/* kiln.h: the public C API for models compiled by kiln.
 *
 * A compiled model is a shared object (kiln compile model.onnx -o model.so).
 * Load it, ask it what it takes, create one context per thread of use, run.
 * Every entry point returns a status (0 = ok); on failure the message is in
 * kiln_last_error(ctx) (or kiln_load_error() for loading).
 *
 *   kiln_model *m = kiln_model_load("bert.so");
 *   kiln_context *c = kiln_context_create(m, 2);
 *   kiln_tensor in[3] = {...}, out[2] = {0};        // out: context-owned
 *   if (kiln_run(c, in, 3, out, 2)) fprintf(stderr, "%s\n", kiln_last_error(c));
 *   kiln_context_free(c); kiln_model_free(m);
 *
 * Threads: kiln_model_load, kiln_model_free, kiln_context_create and
 * kiln_context_free may be called from several threads at once, on one
 * model too (each context of its own; two_models.sh stresses it under
 * AddressSanitizer).  Contexts are independent: two threads may run the
 * same model at once on two contexts.  A context runs one kiln_run at a time: a kiln_run that
 * finds another thread inside kiln_run on the same context returns
 * KILN_BUSY at once (it does not wait), and kiln_last_error(ctx) in that
 * thread says the context is in use.  kiln_context_free must not race
 * with a kiln_run on the same context.
 *
 * Lifetimes: a context keeps its model loaded.  kiln_model_free may come
 * before the kiln_context_free of the model's contexts; the model is
 * unloaded when the last of them is freed.  After kiln_model_free the
 * model handle itself must not be used again.
 *
 * kiln_model_load checks the file before loading it (a regular file, an
 * ELF shared object whose headers, segments and embedded weights lie
 * inside the file): a cut copy is refused with a message, not a SIGBUS.
 */
#ifndef KILN_H
#define KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_MAX_RANK 8

/* Numbered as ONNX TensorProto.DataType. */
typedef enum kiln_dtype {
	KILN_F32 = 1, KILN_U8 = 2, KILN_I8 = 3, KILN_U16 = 4, KILN_I16 = 5,
	KILN_I32 = 6, KILN_I64 = 7, KILN_BOOL = 9, KILN_F16 = 10, KILN_F64 = 11,
	KILN_U32 = 12, KILN_U64 = 13, KILN_BF16 = 16
} kiln_dtype;

typedef struct kiln_tensor {
	kiln_dtype dtype;
	int rank;
	int64_t shape[KILN_MAX_RANK];
	void *data;       /* inputs: caller's; outputs: caller's, or NULL for context-owned */
	size_t nbytes;    /* size of data in bytes (outputs: capacity when caller-provided) */
} kiln_tensor;

typedef struct kiln_io_info {
	const char *name;
	kiln_dtype dtype;
	int rank;
	const char *const *dims;   /* per dim: "64", "batch", "s25 + s41" */
} kiln_io_info;

typedef struct kiln_model kiln_model;
typedef struct kiln_context kiln_context;

kiln_model *kiln_model_load(const char *path);        /* NULL: see kiln_load_error() */
const char *kiln_load_error(void);                   /* thread-local */
void kiln_model_free(kiln_model *m);
int kiln_model_num_inputs(const kiln_model *m);
int kiln_model_num_outputs(const kiln_model *m);
const kiln_io_info *kiln_model_input(const kiln_model *m, int i);
const kiln_io_info *kiln_model_output(const kiln_model *m, int i);
/* Input i's values index the rows of an embedding table: they must be below
 * this (e.g. the vocabulary size for input_ids); 0 when unknown. */
int64_t kiln_model_input_index_bound(const kiln_model *m, int i);

/* num_threads: the threads of the context's pool, the caller's included;
 * 0 or negative: the machine's online CPUs; more than 256: 256. */
kiln_context *kiln_context_create(kiln_model *m, int num_threads);  /* NULL on failure */
void kiln_context_free(kiln_context *c);
/* Runs the model.  inputs in model order.  For each output: data == NULL
 * means the context owns the buffer (valid until the next run or free);
 * otherwise data/nbytes is the caller's buffer, which must be large enough.
 * On return shape, rank, dtype and nbytes describe each output.
 * Outputs are written while inputs are read: an output buffer that overlaps
 * an input or another output is refused (-1), also a context-owned output
 * of the last run passed back as an input (copy it first).
 * 0 ok, -1 error, KILN_BUSY: another thread is in kiln_run on c. */
/* kiln_run's status when another thread is running the same context. */
#define KILN_BUSY (-2)

int kiln_run(kiln_context *c, const kiln_tensor *inputs, int ninputs,
             kiln_tensor *outputs, int noutputs);
const char *kiln_last_error(const kiln_context *c);
/* Bytes of the planned arena for the last run's shapes (0 before a run). */
size_t kiln_context_arena_bytes(const kiln_context *c);

/* What a compiled model is: who made it, for which machine, with which
 * weights (strings owned by the model). */
typedef struct kiln_model_info {
	const char *name;            /* the graph's name */
	const char *kiln_version;    /* of the compiler that made it */
	int abi_version;
	const char *target_triple;   /* e.g. "x86_64-pc-linux-gnu" */
	const char *target_cpu;      /* LLVM's name, e.g. "znver4", "x86-64-v3" */
	const char *cpu_features;    /* what kiln_model_load checks, "avx2,fma,..." */
	const char *fpmath;          /* "fp32" or "bf16" */
	const char *weights_file;    /* NULL: embedded; else the file beside the .so */
	unsigned long long weights_bytes;
	unsigned long long weights_hash;   /* content hash, checked for a weights file */
} kiln_model_info;
/* 0, or -1 if m is NULL. */
int kiln_model_get_info(const kiln_model *m, kiln_model_info *info);

/* ---- profiling ----------------------------------------------------------
 * A context can record the time of every op of its runs:
 *
 *   kiln_context_profile_start(c);      // clears what an earlier profile recorded
 *   kiln_run(c, ...); kiln_run(c, ...);
 *   kiln_context_profile_stop(c);
 *   kiln_context_profile_write(c, "trace.json");
 *
 * The trace is the Chrome Trace Event JSON that ONNX Runtime's profiler
 * writes (an array of complete "X" events; opens in Perfetto and
 * chrome://tracing): one "Node" event "<node>_kernel_time" per op and
 * run on thread 0 (the thread that called kiln_run), with args op_name,
 * input_type_shape, output_type_shape, run, flops (GEMMs and attention)
 * and fused_from (the ONNX nodes a fused op absorbed, when the compiler
 * recorded them: a list of names); and one "Job" event "<node>_job" per share of an op's
 * parallel work that a pool thread (tid 1..threads-1) ran.  ts and dur are
 * in microseconds since kiln_context_profile_start, with nanosecond
 * digits; events of one thread never overlap.
 *
 * Profiling off costs one predictable branch per op.  On, each op reads
 * the clock twice and stores one event (at most 2^20 events per thread
 * are kept; later ones are dropped).  The profile functions must not
 * race with a kiln_run on the same context (they return KILN_BUSY when
 * they find one).  All return 0, or -1 with the message in
 * kiln_last_error(c): for a model compiled by a kiln without the
 * profiler, "... compiled without profiling support". */
typedef enum kiln_profile_kind {
	KILN_PROFILE_NODE = 0,   /* one op of one run, on thread 0 */
	KILN_PROFILE_JOB = 1,    /* a pool thread's share of an op's parallel work */
	KILN_PROFILE_RUN = 2     /* one kiln_run, from entry to return (not in the trace) */
} kiln_profile_kind;

typedef struct kiln_profile_event {
	int kind;                /* kiln_profile_kind */
	int thread;              /* 0: the caller of kiln_run; 1..: the context's pool threads */
	int run;                 /* 0 for the first run after kiln_context_profile_start */
	int node;                /* the op's index in the model's execution order; -1 for RUN */
	const char *op;          /* op type ("KlnGemm", "Add"); NULL for RUN */
	const char *name;        /* the node's name (its ONNX name, else "Op#id"); NULL for RUN */
	const char *const *fused_from;   /* the ONNX nodes a fused op absorbed (nfused) */
	int nfused;              /* 0: none recorded */
	int64_t start_ns;        /* since kiln_context_profile_start */
	int64_t dur_ns;
	double flops;            /* GEMMs and attention (NODE only): floating-point ops; else 0 */
} kiln_profile_event;        /* strings owned by the model */

int kiln_context_profile_start(kiln_context *c);
int kiln_context_profile_stop(kiln_context *c);
/* Events recorded since the last start (0 on error or when none). */
size_t kiln_context_profile_count(const kiln_context *c);
/* Event i < kiln_context_profile_count: the thread 0 events (NODE and
 * RUN) in time order, then each pool thread's JOB events in time order. */
int kiln_context_profile_event(const kiln_context *c, size_t i, kiln_profile_event *ev);
/* Writes the trace (see above) to path. */
int kiln_context_profile_write(kiln_context *c, const char *path);

#ifdef __cplusplus
}
#endif
#endif

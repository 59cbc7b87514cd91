/* kiln run, kiln check, kiln bench: everything that executes a compiled
 * model through the public API of runtime/kiln.h. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "kiln.h"
#include "onnx_import.h"
#include "synth.h"
#include "runner/raw_tensor.h"

extern char **environ;

#define MAX_IO 64

static const char run_help[] =
	"usage: kiln run OUT.so --inputs DIR --outputs DIR [--threads N] [--profile=TRACE]\n"
	"\n"
	"Runs a compiled model on DIR/input_K.pb (ONNX TensorProto files, K in the\n"
	"model's input order) and writes output_K.pb the same way.  --threads: 1 to 256\n"
	"(default 2).  --profile=TRACE: record the time of every op, write TRACE (Chrome\n"
	"trace JSON, as ONNX Runtime's profiler writes) and print the ops by time.\n";

static const char check_help[] =
	"usage: kiln check MODEL_DIR [MODEL_DIR...] [options]\n"
	"\n"
	"Compiles MODEL_DIR/model.onnx, runs every MODEL_DIR/test_data_set_N and\n"
	"compares each output with output_K.pb: |kiln - ref| <= atol + rtol*|ref|.\n"
	"Prints the worst absolute and relative error per output; exit 1 on a mismatch.\n"
	"Several folders are checked in turn with the same options, in one process;\n"
	"each then ends with a line \"MODEL_DIR: ok\" or \"MODEL_DIR: FAILED\", and\n"
	"the exit status is 1 if any fails.\n"
	"  --atol=X  --rtol=X       tolerances, finite and >= 0 (default 1e-4 and 1e-3)\n"
	"  --threads=N              threads, 1 to 256 (default 2)\n"
	"  --fpmath=fp32|bf16       precision as for kiln compile; bf16 rounds the GEMMs'\n"
	"                           and attentions' operands to bf16, so it needs\n"
	"                           looser tolerances (e.g. --atol=3e-2 --rtol=3e-2)\n"
	"  --target-triple=aarch64-linux-gnu  compile for aarch64 and run it under\n"
	"                           qemu-aarch64 (Debian's qemu-user; the model is linked\n"
	"                           with gcc-aarch64-linux-gnu and run by kiln-runner)\n"
	"  --quantize=int8|none     int8 GEMMs (and bf16 attention products on AVX512_BF16\n"
	"                           unless --fpmath is given) as for kiln compile (looser\n"
	"                           tolerances too)\n"
	"  --quantize-weight-bits=8|7  int8's weights, as for kiln compile\n"
	"  --remove-padding         as for kiln compile; outputs unpacked from packed tokens\n"
	"                           are compared at their mask's real positions only\n"
	"                           (not under --target-triple)\n"
	"  compile options (-O0|-O1|-O2, --passes=, ...) as for kiln compile\n"
	"  --stats, --explain=PATTERN, --print-before=PASS, --print-after=PASS,\n"
	"  --print-after-all        as for kiln compile: printed per folder, each folder's\n"
	"                           output (its prints, --explain lines, --stats lines with\n"
	"                           the JSON line last of them, then the test sets)\n"
	"                           under a line \"// ===== MODEL_DIR =====\"\n";

static const char bench_help[] =
	"usage: kiln bench OUT.so --batch B --seq S [--regions R] [--threads T] [--runs N]\n"
	"                  [--vocab V] [--lengths LO..HI] [--profile=TRACE]\n"
	"\n"
	"Times a compiled model on synthesized inputs (token ids, masks, token types,\n"
	"region features, chosen by input name; the values of ort_bench.mjs, token\n"
	"ids taken modulo V; without --vocab, modulo the rows of the embedding table\n"
	"each id input indexes, which kiln compile records, else 30522). Prints median,\n"
	"p90 and min latency,\n"
	"the arena size and the peak resident memory; the last line is a JSON object\n"
	"with median_ms, p90_ms, min_ms, arena_bytes, peak_rss_bytes, base_rss_bytes\n(the process's resident bytes before it loaded the model).\n"
	"Ranges: --batch, --seq, --regions 1 to 2^20 (defaults 1, 128, 36), --threads\n"
	"1 to 256 (2), --runs 1 to 1000000 (20), --vocab 1 to 2^31-1.\n"
	"--lengths LO..HI: masks ([batch, seq] inputs named *mask*) with real lengths\n"
	"spread evenly from LO (first row) to HI (last row), the rest padding (right),\n"
	"1 <= LO <= HI <= --seq; without it masks are all ones.\n"
	"--profile=TRACE: profile the timed runs (not the warm-up), write TRACE (Chrome\n"
	"trace JSON, as ONNX Runtime's profiler writes) and print, before the JSON line,\n"
	"the ops by total time with their share, and GFLOP/s and %% of this machine's\n"
	"measured fp32 FMA peak for GEMMs and attention.\n";

/* ---- helpers ------------------------------------------------------------ */

static double half_to_double(uint16_t h)
{
	int e = (h >> 10) & 31, m = h & 1023;
	double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
	return h & 0x8000 ? -v : v;
}

static double elem(const void *p, int t, size_t i)
{
	switch (t) {
	case KILN_F32: return ((const float *)p)[i];
	case KILN_F64: return ((const double *)p)[i];
	case KILN_F16: return half_to_double(((const uint16_t *)p)[i]);
	case KILN_BF16: { uint32_t b = (uint32_t)((const uint16_t *)p)[i] << 16; float f; memcpy(&f, &b, 4); return f; }
	case KILN_I64: return (double)((const int64_t *)p)[i];
	case KILN_U64: return (double)((const uint64_t *)p)[i];
	case KILN_I32: return ((const int32_t *)p)[i];
	case KILN_U32: return ((const uint32_t *)p)[i];
	case KILN_I16: return ((const int16_t *)p)[i];
	case KILN_U16: return ((const uint16_t *)p)[i];
	case KILN_I8: return ((const int8_t *)p)[i];
	default: return ((const uint8_t *)p)[i];
	}
}

static bool is_float(int t)
{
	return t == KILN_F32 || t == KILN_F64 || t == KILN_F16 || t == KILN_BF16;
}

/* Bounds of the numeric options: the pool runs at most 256 threads; the
 * others keep a synthesized input (batch x seq x regions elements) and the
 * timing array far from overflowing. */
#define MAX_THREADS 256
#define MAX_DIM (1LL << 20)
#define MAX_RUNS 1000000LL

/* "--name=value" or "--name value": 1 and *v, 0 if argv[*i] is not the
 * option, -1 (message printed) when its value is missing or empty. */
static int parse_str_opt(int argc, char **argv, int *i, const char *name, const char **v)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	if (!strcmp(a, name) && *i + 1 < argc)
		*v = argv[++*i];
	else if (!strncmp(a, name, n) && a[n] == '=')
		*v = a + n + 1;
	else if (!strcmp(a, name))
		*v = "";
	else
		return 0;
	if (!**v) {
		cli_error("%s needs a value", name);
		return -1;
	}
	return 1;
}

static int parse_int_opt(int argc, char **argv, int *i, const char *name, long long lo,
                         long long hi, long long *v)
{
	const char *s;
	int r = parse_str_opt(argc, argv, i, name, &s);
	if (r <= 0)
		return r;
	return cli_parse_int(name, s, lo, hi, v) ? -1 : 1;
}

static int parse_tol_opt(int argc, char **argv, int *i, const char *name, double *v)
{
	const char *s;
	int r = parse_str_opt(argc, argv, i, name, &s);
	if (r <= 0)
		return r;
	return cli_parse_nonneg(name, s, v) ? -1 : 1;
}

/* Reads DIR/input_K.pb for every model input into t (data malloc'd). */
static int read_inputs(const kiln_model *m, const char *dir, kiln_tensor *t, PbTensor *pb)
{
	int nin = kiln_model_num_inputs(m);
	for (int k = 0; k < nin; k++) {
		char path[4096];
		Diag d = {0};
		snprintf(path, sizeof path, "%s/input_%d.pb", dir, k);
		if (pb_tensor_read(path, &pb[k], &d)) {
			cli_error("%s", d.msg);
			for (int j = 0; j < k; j++)
				pb_tensor_free(&pb[j]);
			return -1;
		}
		/* onnx 1.12 writes bfloat16 test data as uint16 (numpy has no
		 * bfloat16): the same bits, read as what the model declares */
		if (pb[k].dtype == DT_U16 && kiln_model_input(m, k)->dtype == KILN_BF16)
			pb[k].dtype = DT_BF16;
		t[k].dtype = (kiln_dtype)pb[k].dtype;
		t[k].rank = pb[k].rank;
		memcpy(t[k].shape, pb[k].dims, sizeof(int64_t) * KILN_MAX_RANK);
		t[k].data = pb[k].data;
		t[k].nbytes = pb[k].nbytes;
	}
	return 0;
}

/* NAME is PREFIX_K.pb (PREFIX "input" or "output") with K an integer (a
 * sign, leading zeros allowed): 1, and *taken whether it is one that is
 * read (K as "%d" prints it, 0 <= K < n); 0 for any other name
 * (input_ids.pb). */
static int io_file_name(const char *name, const char *prefix, int n, bool *taken)
{
	size_t len = strlen(name), pl = strlen(prefix);
	if (len < pl + 5 || strncmp(name, prefix, pl) || name[pl] != '_' ||
	    strcmp(name + len - 3, ".pb"))
		return 0;
	const char *num = name + pl + 1, *end = name + len - 3, *p = num;
	if (*p == '-' || *p == '+')
		p++;
	if (p == end)
		return 0;
	for (const char *q = p; q < end; q++)
		if (!isdigit((unsigned char)*q))
			return 0;
	char canon[300];
	long k = end - num <= 9 ? strtol(num, NULL, 10) : -1;
	snprintf(canon, sizeof canon, "%s_%ld.pb", prefix, k);
	*taken = k >= 0 && k < n && !strcmp(canon, name);
	return 1;
}

/* DIR/PREFIX_K.pb that is not read (K past the model's inputs or outputs,
 * negative, or spelled input_01.pb): a file meant for another model, or a
 * typo; -1 and one line if any. */
static int check_extra_files(const char *dir, const char *prefix, int n)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;            /* read_inputs says why */
	int rc = 0;
	bool in = !strcmp(prefix, "input");
	for (struct dirent *e; !rc && (e = readdir(d));) {
		bool taken;
		if (!io_file_name(e->d_name, prefix, n, &taken) || taken)
			continue;
		if (n == 0)
			cli_error("%s/%s: the model %s no %ss", dir, e->d_name, in ? "takes" : "has", prefix);
		else
			cli_error("%s/%s: the model %s %d %s%s (%s_0.pb to %s_%d.pb)", dir, e->d_name,
			          in ? "takes" : "has", n, prefix, n == 1 ? "" : "s", prefix, prefix, n - 1);
		rc = -1;
	}
	closedir(d);
	return rc;
}

static int check_extra_inputs(const char *dir, int nin)
{
	return check_extra_files(dir, "input", nin);
}

/* name dtype[shape] and its first values, one line per output */
static void print_output(const char *name, const kiln_tensor *t)
{
	cli_put_esc(name);
	printf(" %s[", ir_dtype_name((DType)t->dtype));
	size_t n = 1;
	for (int k = 0; k < t->rank; k++) {
		printf("%s%lld", k ? ", " : "", (long long)t->shape[k]);
		n *= (size_t)t->shape[k];
	}
	printf("]");
	for (size_t i = 0; i < n && i < 6; i++) {
		const char *p = (const char *)t->data;
		switch (t->dtype) {
		case KILN_F32: { float v; memcpy(&v, p + 4 * i, 4); printf(" %.6g", v); break; }
		case KILN_F64: { double v; memcpy(&v, p + 8 * i, 8); printf(" %.6g", v); break; }
		case KILN_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); printf(" %lld", (long long)v); break; }
		case KILN_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); printf(" %d", v); break; }
		case KILN_BOOL: case KILN_U8: printf(" %u", (unsigned)(unsigned char)p[i]); break;
		default: i = n; break;
		}
	}
	printf("%s\n", n > 6 ? " ..." : "");
}

static void free_inputs(PbTensor *pb, int n)
{
	for (int k = 0; k < n; k++)
		pb_tensor_free(&pb[k]);
}

static kiln_context *open_model(const char *so, int threads, kiln_model **m)
{
	*m = kiln_model_load(so);
	if (!*m) {
		cli_error("%s", kiln_load_error());
		return NULL;
	}
	if (kiln_model_num_inputs(*m) > MAX_IO || kiln_model_num_outputs(*m) > MAX_IO) {
		cli_error("%s: more than %d inputs or outputs", so, MAX_IO);
		kiln_model_free(*m);
		return NULL;
	}
	kiln_context *c = kiln_context_create(*m, threads);
	if (!c) {
		cli_error("%s", kiln_load_error());
		kiln_model_free(*m);
	}
	return c;
}

/* ---- kiln run ------------------------------------------------------------ */

/* --outputs must be a folder, or be creatable as one: checked before the
 * model runs (a file there was found only after the run). */
static int check_outdir(const char *outdir)
{
	struct stat st;
	if (stat(outdir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		cli_error("%s: --outputs is not a folder", outdir);
		return -1;
	}
	int e = errno;
	if (e == ENOENT) {      /* mkdir needs the parent folder */
		char parent[4096];
		size_t n = strlen(outdir);
		while (n > 1 && outdir[n - 1] == '/')
			n--;
		while (n > 0 && outdir[n - 1] != '/')
			n--;
		snprintf(parent, sizeof parent, "%.*s", n ? (int)n : 1, n ? outdir : ".");
		if (stat(parent, &st))
			e = errno;
		else if (!S_ISDIR(st.st_mode))
			e = ENOTDIR;
		else
			return 0;
	}
	cli_error("%s: cannot create folder: %s", outdir, strerror(e));
	return -1;
}

int cmd_run(int argc, char **argv)
{
	const char *so = NULL, *indir = NULL, *outdir = NULL, *trace = NULL;
	long long threads = 2;
	if (cli_has_help(argc, argv))
		return fputs(run_help, stdout), EXIT_OK;
	for (int i = 1; i < argc; i++) {
		int r;
		if ((r = parse_str_opt(argc, argv, &i, "--inputs", &indir)) ||
		    (r = parse_str_opt(argc, argv, &i, "--profile", &trace)) ||
		    (r = parse_str_opt(argc, argv, &i, "--outputs", &outdir)) ||
		    (r = parse_int_opt(argc, argv, &i, "--threads", 1, MAX_THREADS, &threads))) {
			if (r < 0)
				return EXIT_USAGE;
		} else if (cli_positional("run", argv[i], &so)) {
			return EXIT_USAGE;
		}
	}
	if (!so || !indir || !outdir) {
		cli_error("run: need OUT.so, --inputs DIR and --outputs DIR (see kiln run --help)");
		return EXIT_USAGE;
	}
	if (trace && cli_profile_check_path(trace))
		return EXIT_BAD_INPUT;
	if (check_outdir(outdir))
		return EXIT_BAD_INPUT;
	kiln_model *m;
	kiln_context *c = open_model(so, (int)threads, &m);
	if (!c)
		return EXIT_BAD_INPUT;
	int rc = EXIT_BAD_INPUT;
	kiln_tensor in[MAX_IO], out[MAX_IO];
	PbTensor pb[MAX_IO];
	int nin = kiln_model_num_inputs(m), nout = kiln_model_num_outputs(m);
	memset(out, 0, sizeof out);
	if (check_extra_inputs(indir, nin) || read_inputs(m, indir, in, pb))
		goto done;
	if (trace && kiln_context_profile_start(c)) {
		cli_error("%s: %s", so, kiln_last_error(c));
	} else if (kiln_run(c, in, nin, out, nout)) {
		cli_error("%s: %s", so, kiln_last_error(c));
	} else if (mkdir(outdir, 0777) && errno != EEXIST) {
		cli_error("%s: cannot create folder: %s", outdir, strerror(errno));
	} else {
		rc = EXIT_OK;
		for (int k = 0; k < nout && rc == EXIT_OK; k++) {
			char path[4096];
			Diag d = {0};
			PbTensor t = {.name = (char *)kiln_model_output(m, k)->name,
			              .dtype = (DType)out[k].dtype, .rank = out[k].rank,
			              .data = out[k].data, .nbytes = out[k].nbytes};
			memcpy(t.dims, out[k].shape, sizeof t.dims);
			snprintf(path, sizeof path, "%s/output_%d.pb", outdir, k);
			if (pb_tensor_write(path, &t, &d)) {
				cli_error("%s", d.msg);
				rc = EXIT_BAD_INPUT;
			}
		}
		for (int k = 0; k < nout && rc == EXIT_OK; k++)
			print_output(kiln_model_output(m, k)->name, &out[k]);
		if (rc == EXIT_OK && trace && cli_profile_report(c, so, trace, (int)threads))
			rc = EXIT_BAD_INPUT;
	}
	free_inputs(pb, nin);
done:
	kiln_context_free(c);
	kiln_model_free(m);
	return rc;
}

/* ---- kiln check ---------------------------------------------------------- */

typedef struct Tol { double atol, rtol; } Tol;

/* Compares one output; prints a line; 0 if within tolerance. */
/* --remove-padding: element i of an output [B, S, *] unpacked from packed
 * tokens is at a padded position (mask [B, S] 0 there), where the packed
 * model gives zeros and the reference something else. */
static bool padded(const kiln_tensor *mask, const kiln_tensor *got, size_t i)
{
	if (!mask || mask->rank != 2 || got->rank < 2 || got->shape[0] != mask->shape[0] ||
	    got->shape[1] != mask->shape[1])
		return false;
	size_t inner = 1;
	for (int d = 2; d < got->rank; d++)
		inner *= (size_t)got->shape[d];
	return inner && elem(mask->data, mask->dtype, i / inner) == 0.0;
}

static int compare(const char *set, const char *rawname, const kiln_tensor *got, const PbTensor *ref,
                   Tol tol, const kiln_tensor *mask)
{
	char name[256];   /* the model's output name, with control bytes escaped */
	diag_escape(name, sizeof name, rawname);
	if (got->rank != ref->rank || memcmp(got->shape, ref->dims, sizeof(int64_t) * got->rank)) {
		printf("  %s %s: shape differs from the reference\n", set, name);
		return -1;
	}
	if ((int)got->dtype != (int)ref->dtype) {
		printf("  %s %s: dtype %s, reference %s\n", set, name, ir_dtype_name((DType)got->dtype),
		       ir_dtype_name((DType)ref->dtype));
		return -1;
	}
	size_t es = cli_dtype_size(ref->dtype), n = ref->nbytes / es;
	double worst_abs = 0, worst_rel = 0;
	size_t bad = 0, first_bad = 0;
	bool fl = is_float(ref->dtype);
	size_t skipped = 0;
	for (size_t i = 0; i < n; i++) {
		double a = elem(got->data, got->dtype, i), b = elem(ref->data, ref->dtype, i);
		if (isnan(a) && isnan(b))
			continue;
		if (padded(mask, got, i)) {
			skipped++;
			continue;
		}
		double err = fabs(a - b);
		if (isinf(a) && isinf(b) && a == b)
			err = 0;
		double rel = err / (fabs(b) > 1e-30 ? fabs(b) : 1e-30);
		if (isnan(err) || err > worst_abs)
			worst_abs = isnan(err) ? INFINITY : err;
		if (fabs(b) > 1e-6 && rel > worst_rel)
			worst_rel = rel;
		/* err == 0 first: with --rtol=0, 0 * inf would make inf == inf fail;
		 * an infinity matches only itself (rtol * inf passed anything);
		 * integers compare exactly (int64 beyond 2^53 is not a double) */
		bool ok = !fl ? !memcmp((const char *)got->data + i * es, (const char *)ref->data + i * es, es)
		        : isinf(a) || isinf(b) ? a == b
		        : err == 0 || err <= tol.atol + tol.rtol * fabs(b);
		if (!ok && !bad++)
			first_bad = i;
	}
	printf("  %s %-24s max abs %.3g  max rel %.3g  %s", set, name, worst_abs, worst_rel,
	       bad ? "MISMATCH" : "ok");
	if (bad && ((int)ref->dtype == KILN_I64 || (int)ref->dtype == KILN_U64)) {   /* beyond a double */
		int64_t x, y;
		memcpy(&x, (const char *)got->data + 8 * first_bad, 8);
		memcpy(&y, (const char *)ref->data + 8 * first_bad, 8);
		if ((int)ref->dtype == KILN_I64)
			printf(" (%zu of %zu elements, first at %zu: %lld vs %lld)", bad, n, first_bad,
			       (long long)x, (long long)y);
		else
			printf(" (%zu of %zu elements, first at %zu: %llu vs %llu)", bad, n, first_bad,
			       (unsigned long long)x, (unsigned long long)y);
	} else if (bad) {
		printf(" (%zu of %zu elements, first at %zu: %g vs %g)", bad, n, first_bad,
		       elem(got->data, got->dtype, first_bad), elem(ref->data, ref->dtype, first_bad));
	}
	if (skipped)
		printf(" (%zu elements at padded positions not compared)", skipped);
	putchar('\n');
	return bad ? -1 : 0;
}

static int check_set(kiln_context *c, const kiln_model *m, const char *dir, const char *set, Tol tol,
                     const int *padmask)
{
	kiln_tensor in[MAX_IO], out[MAX_IO];
	PbTensor pb[MAX_IO];
	int nin = kiln_model_num_inputs(m), nout = kiln_model_num_outputs(m), rc = 0;
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, set);
	if (check_extra_files(path, "input", nin) || check_extra_files(path, "output", nout) ||
	    read_inputs(m, path, in, pb))
		return -1;
	memset(out, 0, sizeof out);
	if (kiln_run(c, in, nin, out, nout)) {
		cli_error("%s: %s", path, kiln_last_error(c));
		free_inputs(pb, nin);
		return -1;
	}
	for (int k = 0; k < nout; k++) {
		PbTensor ref;
		Diag d = {0};
		char rp[4200];
		snprintf(rp, sizeof rp, "%s/output_%d.pb", path, k);
		if (pb_tensor_read(rp, &ref, &d)) {
			cli_error("%s", d.msg);
			rc = -1;
			continue;
		}
		if (ref.dtype == DT_U16 && out[k].dtype == KILN_BF16)
			ref.dtype = DT_BF16;   /* see read_inputs */
		const kiln_tensor *mask = padmask[k] >= 0 && padmask[k] < nin ? &in[padmask[k]] : NULL;
		if (compare(set, kiln_model_output(m, k)->name, &out[k], &ref, tol, mask))
			rc = -1;
		pb_tensor_free(&ref);
	}
	free_inputs(pb, nin);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of DIR/test_data_set_* in *names (malloc'd, each and the
 * array); returns the count, -1 out of memory.  Every set is checked: a
 * cap would check an arbitrary (readdir order) subset and call it all. */
static int list_sets(const char *dir, char ***names)
{
	DIR *d = opendir(dir);
	int n = 0, cap = 0;
	bool oom = false;
	*names = NULL;
	if (!d)
		return 0;
	for (struct dirent *e; !oom && (e = readdir(d));) {
		if (strncmp(e->d_name, "test_data_set_", 14))
			continue;
		if (n == cap) {
			int ncap = cap ? 2 * cap : 64;
			char **p = cap < (1 << 20) ? realloc(*names, (size_t)ncap * sizeof *p) : NULL;
			if (!p) {
				oom = true;
				break;
			}
			*names = p;
			cap = ncap;
		}
		if (!((*names)[n] = strdup(e->d_name)))
			oom = true;
		else
			n++;
	}
	closedir(d);
	if (oom) {
		for (int i = 0; i < n; i++)
			free((*names)[i]);
		free(*names);
		*names = NULL;
		return -1;
	}
	if (n)
		qsort(*names, (size_t)n, sizeof **names, cmp_str);
	return n;
}

/* ---- kiln check on another architecture ---------------------------------
 * The model is compiled for GNU (aarch64-linux-gnu), the inputs of every set
 * written as raw tensors (runner/raw_tensor.h) into TMP/set_N, and one run
 * of QEMU (qemu-aarch64 -L /usr/aarch64-linux-gnu; $KILN_QEMU names another
 * emulator) executes kiln-runner, cross-built with the runtime, on all
 * sets; its outputs are compared here as a native run's would be. */

typedef struct Cross {
	const char *gnu;           /* "aarch64-linux-gnu" */
	char qemu[256], runner[4200], sysroot[300];
} Cross;

/* The emulator and the runner, before anything is compiled: -1 and one
 * line when either is missing. */
static int cross_tools(Cross *x, const char *gnu)
{
	x->gnu = gnu;
	const char *q = getenv("KILN_QEMU");
	snprintf(x->qemu, sizeof x->qemu, "%s", q && q[0] ? q : "");
	if (!x->qemu[0]) {
		char arch[64];
		snprintf(arch, sizeof arch, "%.*s", (int)strcspn(gnu, "-"), gnu);
		snprintf(x->qemu, sizeof x->qemu, "qemu-%s", arch);
		const char *path = getenv("PATH");
		bool found = false;
		char buf[4400];
		for (const char *p = path ? path : "/usr/bin:/bin"; *p && !found;) {
			size_t n = strcspn(p, ":");
			snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n ? p : ".", x->qemu);
			found = !access(buf, X_OK);
			p += n + (p[n] == ':');
		}
		if (!found) {
			cli_error("check: %s not found: running a model for %s needs it (Debian: apt-get "
			          "install qemu-user)", x->qemu, gnu);
			return -1;
		}
	}
	snprintf(x->sysroot, sizeof x->sysroot, "/usr/%s", gnu);
	Diag d = {0};
	if (be_cross_path(gnu, "kiln-runner", x->runner, sizeof x->runner, &d)) {
		cli_error("check: %s", d.msg);
		return -1;
	}
	return 0;
}

/* DIR/SET/input_K.pb, K < nin (the model's inputs), into out/input_K.bin */
static int cross_inputs(const char *setdir, int nin, const char *out)
{
	for (int k = 0; k < nin; k++) {
		char path[4300], bin[4300];
		snprintf(path, sizeof path, "%s/input_%d.pb", setdir, k);
		PbTensor pb;
		Diag d = {0};
		if (pb_tensor_read(path, &pb, &d)) {
			cli_error("%s", d.msg);
			return -1;
		}
		kiln_tensor t = {(kiln_dtype)pb.dtype, pb.rank, {0}, pb.data, pb.nbytes};
		memcpy(t.shape, pb.dims, sizeof(int64_t) * KILN_MAX_RANK);
		snprintf(bin, sizeof bin, "%s/input_%d.bin", out, k);
		int rc = raw_write(bin, &t, pb.name);
		pb_tensor_free(&pb);
		if (rc) {
			cli_error("check: cannot write %s: %s", bin, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* QEMU runner SO THREADS DIR...: 0 when it exits 0 (its errors went to
 * stderr, one line each) */
static int cross_run(const Cross *x, const char *so, int threads, char **dirs, int n)
{
	char th[16];
	snprintf(th, sizeof th, "%d", threads);
	char **argv = calloc((size_t)n + 8, sizeof *argv);
	if (!argv)
		return -1;
	int a = 0;
	argv[a++] = (char *)x->qemu;
	argv[a++] = "-L";
	argv[a++] = (char *)x->sysroot;
	argv[a++] = (char *)x->runner;
	argv[a++] = (char *)so;
	argv[a++] = th;
	for (int i = 0; i < n; i++)
		argv[a++] = dirs[i];
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ), st = 0;
	free(argv);
	if (rc) {
		cli_error("check: cannot run %s: %s", x->qemu, strerror(rc));
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFSIGNALED(st))
		cli_error("check: %s %s died with signal %d", x->qemu, x->runner, WTERMSIG(st));
	return -1;
}

/* The outputs kiln-runner wrote into out against DIR/SET/output_K.pb */
static int cross_compare(const char *set, const char *setdir, const char *out, Tol tol)
{
	int rc = 0;
	for (int k = 0;; k++) {
		char rp[4300], bin[4300];
		snprintf(rp, sizeof rp, "%s/output_%d.pb", setdir, k);
		if (access(rp, F_OK))
			return k ? rc : (cli_error("%s: no output_0.pb", setdir), -1);
		snprintf(bin, sizeof bin, "%s/output_%d.bin", out, k);
		kiln_tensor got;
		char *name = NULL;
		const char *why;
		if (raw_read(bin, &got, &name, &why)) {
			cli_error("check: %s: %s (the model has fewer outputs than %s has?)", bin, why, setdir);
			return -1;
		}
		PbTensor ref;
		Diag d = {0};
		if (pb_tensor_read(rp, &ref, &d)) {
			cli_error("%s", d.msg);
			rc = -1;
		} else {
			if (ref.dtype == DT_U16 && got.dtype == KILN_BF16)
				ref.dtype = DT_BF16;   /* see read_inputs */
			if (compare(set, name, &got, &ref, tol, NULL))
				rc = -1;
			pb_tensor_free(&ref);
		}
		free(got.data);
		free(name);
	}
}

/* Removes the files in dir, then dir (the set folders: files only) */
static void rm_flat(const char *dir)
{
	DIR *d = opendir(dir);
	char p[4400];
	for (struct dirent *e; d && (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* Every set under emulation; returns how many mismatched (nsets if the
 * runner failed) */
static int check_cross(const Cross *x, const char *so, const char *tmpdir, const char *dir,
                       int nin, char **sets, int nsets, int threads, Tol tol)
{
	char **outs = calloc((size_t)nsets + 1, sizeof *outs);
	int bad = 0, made = 0;
	bool failed = false;
	if (!outs)
		return nsets;
	for (; made < nsets; made++) {
		char setdir[4200];
		outs[made] = malloc(4200);
		if (!outs[made])
			break;
		snprintf(outs[made], 4200, "%s/%s", tmpdir, sets[made]);
		snprintf(setdir, sizeof setdir, "%s/%s", dir, sets[made]);
		if (mkdir(outs[made], 0700)) {
			cli_error("check: cannot create %s: %s", outs[made], strerror(errno));
			free(outs[made]);
			outs[made] = NULL;
			failed = true;
			break;
		}
		if (cross_inputs(setdir, nin, outs[made])) {
			made++;
			failed = true;
			break;
		}
	}
	if (failed || made < nsets || cross_run(x, so, threads, outs, nsets)) {
		bad = nsets;
	} else {
		for (int i = 0; i < nsets; i++) {
			char setdir[4200];
			snprintf(setdir, sizeof setdir, "%s/%s", dir, sets[i]);
			bad += cross_compare(sets[i], setdir, outs[i], tol) != 0;
		}
	}
	for (int i = 0; i < made; i++) {
		if (outs[i])
			rm_flat(outs[i]);
		free(outs[i]);
	}
	free(outs);
	return bad;
}

/* Per graph output: the input index of the mask whose padded positions it
 * has zeros at (a KlnUnpackTokens output, --remove-padding), else -1. */
/* The mask of the KlnUnpackTokens v is computed from (through at most
 * depth nodes, looking at most *budget nodes), else -1. */
static ValId unpacked_from(const Graph *g, ValId v, int depth, int *budget)
{
	const Value *val = IR_VAL(g, v);
	if (val->kind != V_NODE || depth <= 0 || --*budget < 0)
		return -1;
	const Node *n = IR_NODE(g, val->def);
	if (n->op == OP_KlnUnpackTokens)
		return n->in[2];
	for (int k = 0; k < n->nin; k++) {
		ValId m = n->in[k] >= 0 ? unpacked_from(g, n->in[k], depth - 1, budget) : -1;
		if (m >= 0)
			return m;
	}
	return -1;
}

/* Per graph output: the input index of the mask M at whose padded
 * positions it differs from the reference (--remove-padding: an output
 * [B, S, ...] with M's dims, computed from unpacked tokens), else -1. */
static void padded_outputs(const Graph *g, int *padmask)
{
	for (int k = 0; k < MAX_IO; k++)
		padmask[k] = -1;
	for (int k = 0; k < g->noutputs && k < MAX_IO; k++) {
		int budget = 256;
		ValId mask = unpacked_from(g, g->outputs[k], 8, &budget);
		const Value *v = IR_VAL(g, g->outputs[k]);
		if (mask < 0 || v->rank < 2 || v->dims[0] != IR_VAL(g, mask)->dims[0] ||
		    v->dims[1] != IR_VAL(g, mask)->dims[1])
			continue;
		for (int j = 0; j < g->ninputs; j++)
			if (g->inputs[j] == mask)
				padmask[k] = j;
	}
}

static int check_dirs(const char **dirs, int ndirs, CompileOpts *o, int threads, Tol tol);

/* --stats, --explain or a --print-* option: what the compile prints goes
 * under each folder's block line */
static bool check_prints(const CompileOpts *o)
{
	const PassOptions *p = &o->passes;
	return o->stats || p->explain || p->print_before || p->print_after || p->print_after_all;
}

/* kiln check of one folder: compile DIR/model.onnx into a temporary
 * folder, run every test set, compare.  EXIT_OK or EXIT_BAD_INPUT. */
static int check_dir(const char *dir, CompileOpts *o, const char *gnu, Cross *cross, int threads, Tol tol)
{
	char model[4096], tmpdir[] = "/tmp/kiln-check-XXXXXX", so[4200];
	snprintf(model, sizeof model, "%s/model.onnx", dir);
	if (!mkdtemp(tmpdir)) {
		cli_error("check: cannot create a temporary folder: %s", strerror(errno));
		return EXIT_BAD_INPUT;
	}
	snprintf(so, sizeof so, "%s/model.so", tmpdir);
	o->be.out = so;
	o->be.emit = BE_EMIT_SO;
	int rc = EXIT_BAD_INPUT;
	PassStats ps = {0};
	BeStats bs = {0};
	Diag d = {0};
	if (check_prints(o))
		cli_block_start("%s", dir);
	double t0 = cli_now_ms();
	int ops_in[OP_COUNT];
	Graph *g = cli_load_and_optimize(model, o, &ps, ops_in);
	if (!g)
		goto clean;
	int padmask[MAX_IO];
	padded_outputs(g, padmask);
	int64_t *syms = o->stats ? cli_stats_syms(g) : NULL;
	o->be.arena_syms = syms;
	int err = be_compile(g, &o->be, &bs, &d), nin = g->ninputs;
	o->be.arena_syms = NULL;
	free(syms);
	if (!err && o->stats)
		cli_print_stats(g, ops_in, &ps, cli_now_ms() - t0, (long long)bs.arena_bytes, &bs, o->be.fpmath);
	ir_graph_free(g);
	if (err) {
		cli_fail(model, d.msg);
		goto clean;
	}
	kiln_model *m = NULL;
	kiln_context *c = gnu ? NULL : open_model(so, threads, &m);
	if (!gnu && !c)
		goto clean;
	char **sets;
	int nsets = list_sets(dir, &sets), bad = 0;
	if (nsets < 0) {
		cli_error("%s: out of memory listing the test sets", dir);
		kiln_context_free(c);
		kiln_model_free(m);
		goto clean;
	}
	printf("%s: %d test sets%s%s\n", dir, nsets, gnu ? ", run for " : "", gnu ? gnu : "");
	if (gnu && nsets)
		bad = check_cross(cross, so, tmpdir, dir, nin, sets, nsets, threads, tol);
	for (int i = 0; i < nsets; i++) {
		if (!gnu)
			bad += check_set(c, m, dir, sets[i], tol, padmask) != 0;
		free(sets[i]);
	}
	free(sets);
	kiln_context_free(c);
	kiln_model_free(m);
	if (nsets == 0)
		cli_error("%s: no test_data_set_N folders", dir);
	else if (bad)
		printf("%s: MISMATCH in %d of %d test sets\n", dir, bad, nsets);
	else
		printf("%s: all %d test sets match\n", dir, nsets);
	rc = nsets && !bad ? EXIT_OK : EXIT_BAD_INPUT;
clean:
	/* the compiled model and its header */
	unlink(so);
	snprintf(so, sizeof so, "%s/model.h", tmpdir);
	unlink(so);
	snprintf(so, sizeof so, "%s/model.weights", tmpdir);
	unlink(so);
	rmdir(tmpdir);
	return rc;
}

/* kiln check DIR [DIR...]: several folders in one process (a test suite
 * saves a process start and LLVM's set-up per folder); each folder's
 * result is then its own last line, "DIR: ok" or "DIR: FAILED", flushed
 * before the next folder starts.  Exit 1 if any fails. */
int cmd_check(int argc, char **argv)
{
	CompileOpts o;
	long long threads = 2;
	Tol tol = {1e-4, 1e-3};
	cli_compile_opts_init(&o);
	if (cli_has_help(argc, argv))
		return fputs(check_help, stdout), EXIT_OK;
	const char **dirs = calloc((size_t)argc, sizeof *dirs);
	int ndirs = 0;
	if (!dirs) {
		cli_error("check: out of memory");
		return EXIT_BAD_INPUT;
	}
	for (int i = 1; i < argc; i++) {
		int r = cli_parse_compile_opt(&o, argv[i]);
		if (!r)
			r = parse_int_opt(argc, argv, &i, "--threads", 1, MAX_THREADS, &threads);
		if (!r)
			r = parse_tol_opt(argc, argv, &i, "--atol", &tol.atol);
		if (!r)
			r = parse_tol_opt(argc, argv, &i, "--rtol", &tol.rtol);
		if (!r && argv[i][0] == '-') {
			cli_error("check: unexpected argument '%s' (see kiln check --help)", argv[i]);
			r = -1;
		}
		if (r < 0)
			return free(dirs), EXIT_USAGE;
		if (!r)
			dirs[ndirs++] = argv[i];
	}
	int rc = check_dirs(dirs, ndirs, &o, (int)threads, tol);
	free(dirs);
	return rc;
}

static int check_dirs(const char **dirs, int ndirs, CompileOpts *o, int threads, Tol tol)
{
	if (!ndirs) {
		cli_error("check: no model folder given (see kiln check --help)");
		return EXIT_USAGE;
	}
	if (o->weights_from || o->graph) {
		cli_error("check: --weights-from and --graph are for text IR input (kiln compile X.ir)");
		return EXIT_USAGE;
	}
	int tc = cli_check_target_cpu(o);
	if (tc)
		return tc > 0 ? EXIT_OK : EXIT_USAGE;
	cli_compile_opts_finish(o);
	Cross cross;
	const char *gnu = be_cross_gnu(o->be.target_triple);
	if (gnu && cross_tools(&cross, gnu))
		return EXIT_BAD_INPUT;
	int nbad = 0;
	for (int i = 0; i < ndirs; i++) {
		int r = check_dir(dirs[i], o, gnu, &cross, threads, tol);
		nbad += r != EXIT_OK;
		if (ndirs > 1)
			printf("%s: %s\n", dirs[i], r == EXIT_OK ? "ok" : "FAILED");
		fflush(stdout);
	}
	if (ndirs > 1)
		printf("check: %d of %d folders pass\n", ndirs - nbad, ndirs);
	return nbad ? EXIT_BAD_INPUT : EXIT_OK;
}

/* ---- kiln bench ---------------------------------------------------------- */

/* Resident bytes of this process now (VmRSS), -1 if unknown. */
static long long rss_now(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int cmd_bench(int argc, char **argv)
{
	const char *so = NULL, *trace = NULL, *lengths = NULL;
	long long batch = 1, seq = 128, regions = 36, threads = 2, runs = 20, vocab = 0, lo = 0, hi = 0;
	if (cli_has_help(argc, argv))
		return fputs(bench_help, stdout), EXIT_OK;
	for (int i = 1; i < argc; i++) {
		int r;
		if ((r = parse_int_opt(argc, argv, &i, "--batch", 1, MAX_DIM, &batch)) ||
		    (r = parse_int_opt(argc, argv, &i, "--seq", 1, MAX_DIM, &seq)) ||
		    (r = parse_int_opt(argc, argv, &i, "--regions", 1, MAX_DIM, &regions)) ||
		    (r = parse_int_opt(argc, argv, &i, "--threads", 1, MAX_THREADS, &threads)) ||
		    (r = parse_int_opt(argc, argv, &i, "--runs", 1, MAX_RUNS, &runs)) ||
		    (r = parse_int_opt(argc, argv, &i, "--vocab", 1, INT32_MAX, &vocab)) ||
		    (r = parse_str_opt(argc, argv, &i, "--profile", &trace)) ||
		    (r = parse_str_opt(argc, argv, &i, "--lengths", &lengths))) {
			if (r < 0)
				return EXIT_USAGE;
		} else if (cli_positional("bench", argv[i], &so)) {
			return EXIT_USAGE;
		}
	}
	if (!so) {
		cli_error("bench: need OUT.so (see kiln bench --help)");
		return EXIT_USAGE;
	}
	if (lengths) {
		/* LO..HI, 1 <= LO <= HI <= --seq */
		const char *dots = strstr(lengths, "..");
		char los[32];
		size_t n = dots ? (size_t)(dots - lengths) : 0;
		if (!dots || n == 0 || n >= sizeof los) {
			cli_error("--lengths takes LO..HI (e.g. 16..128), not '%s'", lengths);
			return EXIT_USAGE;
		}
		memcpy(los, lengths, n);
		los[n] = 0;
		if (cli_parse_int("--lengths", los, 1, seq, &lo) || cli_parse_int("--lengths", dots + 2, lo, seq, &hi))
			return EXIT_USAGE;
	}
	if (trace && cli_profile_check_path(trace))
		return EXIT_BAD_INPUT;
	long long base_rss = rss_now();     /* this process before the model */
	kiln_model *m;
	kiln_context *c = open_model(so, (int)threads, &m);
	if (!c)
		return EXIT_BAD_INPUT;
	SynthInputs s;
	kiln_tensor out[MAX_IO];
	int rc = EXIT_BAD_INPUT, nout = kiln_model_num_outputs(m);
	double *ms = calloc((size_t)runs, sizeof *ms);
	memset(out, 0, sizeof out);
	if (!ms)
		cli_error("bench: out of memory for %lld timings", runs);
	if (!ms || synth_inputs(m, batch, seq, regions, vocab, &s))
		goto done;
	if (lengths)
		synth_lengths(m, &s, lo, hi);
	for (long long i = -3; i < runs; i++) {   /* three warm-up runs */
		if (i == 0 && trace && kiln_context_profile_start(c)) {
			cli_error("%s: %s", so, kiln_last_error(c));
			synth_free(&s);
			goto done;
		}
		double t0 = cli_now_ms();
		if (kiln_run(c, s.t, s.n, out, nout)) {
			cli_error("%s: %s", so, kiln_last_error(c));
			synth_free(&s);
			goto done;
		}
		if (i >= 0)
			ms[i] = cli_now_ms() - t0;
	}
	synth_free(&s);
	qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
	double med = ms[runs / 2], p90 = ms[(runs * 9) / 10 < runs ? (runs * 9) / 10 : runs - 1];
	size_t arena = kiln_context_arena_bytes(c);
	printf("%s: batch %lld, sequence %lld, %lld threads, %lld runs\n", so, batch, seq, threads, runs);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	long long rss = (long long)ru.ru_maxrss * 1024;
	printf("median %.2f ms, p90 %.2f ms, min %.2f ms, arena %zu bytes, peak RSS %lld bytes "
	       "(%lld before loading the model)\n", med, p90, ms[0], arena, rss, base_rss);
	if (trace && cli_profile_report(c, so, trace, (int)threads))
		goto done;
	printf("{\"median_ms\": %.3f, \"p90_ms\": %.3f, \"min_ms\": %.3f, \"arena_bytes\": %zu, "
	       "\"peak_rss_bytes\": %lld, \"base_rss_bytes\": %lld}\n", med, p90, ms[0], arena, rss,
	       base_rss);
	rc = EXIT_OK;
done:
	free(ms);
	kiln_context_free(c);
	kiln_model_free(m);
	return rc;
}

/* profile.c: the per-op profiler of a context (kiln.h kiln_context_profile_*).
 *
 * While a context profiles, its frame carries f->prof, and the generated
 * code calls rt_prof_begin / rt_prof_end around each node's function (the
 * dims of the node's operands, evaluated for this run, go to the end
 * hook); off, f->prof is NULL and each node costs one predictable branch.
 * The pool threads record their share of every parallel job (pool.c calls
 * rt_prof_job), attributed to the node that the calling thread is in.
 *
 * Every thread appends to its own event array (no locks); the arrays are
 * read between runs only (kiln_run returns after every pool thread
 * finished its share).  Times are CLOCK_MONOTONIC nanoseconds. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rt_internal.h"

/* Per thread, at most this many events; later ones are dropped. */
#define MAX_EVENTS (1 << 20)
#define MAX_DIMS (1 << 23)

typedef struct prof_ev {
	int64_t t0, t1;
	int32_t node;        /* index in desc->nodes, -1: a run */
	int32_t run;
	int64_t dims;        /* offset in the thread's dims, -1: none */
} prof_ev;

typedef struct prof_list {
	prof_ev *ev;
	size_t n, cap;
	int64_t *dims;       /* thread 0: the operand dims of its node events */
	size_t ndims, capdims;
	size_t dropped;
} prof_list;

struct rt_prof {
	const rt_model_desc *d;
	int nthreads;
	int64_t origin;      /* kiln_context_profile_start */
	int32_t run;         /* the run in progress (its index) */
	int32_t nruns;
	/* written by thread 0 before the node's parallel jobs are published,
	 * read by the pool threads (pool.c orders the two) */
	int32_t node;
	int64_t t_node;
	prof_list runs;      /* RUN events */
	prof_list *th;       /* per thread: NODE (thread 0) or JOB events */
};

int64_t rt_prof_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Room for one more event (and ndims dims); false when full or out of memory. */
static bool reserve(prof_list *l, size_t ndims)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		prof_ev *e = l->n < MAX_EVENTS ? realloc(l->ev, cap * sizeof *e) : NULL;
		if (!e)
			return false;
		l->ev = e;
		l->cap = cap;
	}
	if (l->ndims + ndims > l->capdims) {
		size_t cap = l->capdims ? l->capdims : 16384;
		while (cap < l->ndims + ndims)
			cap *= 2;
		int64_t *d = cap <= MAX_DIMS ? realloc(l->dims, cap * sizeof *d) : NULL;
		if (!d)
			return false;
		l->dims = d;
		l->capdims = cap;
	}
	return true;
}

static void push(prof_list *l, int64_t t0, int64_t t1, int32_t node, int32_t run,
                 const int64_t *dims, size_t ndims)
{
	if (!reserve(l, dims ? ndims : 0)) {
		l->dropped++;
		return;
	}
	prof_ev *e = &l->ev[l->n++];
	*e = (prof_ev){t0, t1, node, run, -1};
	if (dims && ndims) {
		e->dims = (int64_t)l->ndims;
		memcpy(l->dims + l->ndims, dims, ndims * sizeof *dims);
		l->ndims += ndims;
	}
}

/* ---- hooks: generated code, the context, the pool ---- */

void rt_prof_begin(kiln_frame *f, int32_t node)
{
	struct rt_prof *p = f->prof;
	p->node = node;
	p->t_node = rt_prof_now();
}

void rt_prof_end(kiln_frame *f, int32_t node, const int64_t *dims)
{
	struct rt_prof *p = f->prof;
	int64_t t1 = rt_prof_now();
	size_t nd = node >= 0 && node < p->d->nnodes && p->d->nodes ? (size_t)p->d->nodes[node].ndims : 0;
	push(&p->th[0], p->t_node, t1, node, p->run, dims, nd);
}

void rt_prof_job(struct rt_prof *p, int thread, int64_t t0, int64_t t1)
{
	if (thread > 0 && thread < p->nthreads)
		push(&p->th[thread], t0, t1, p->node, p->run, NULL, 0);
}

void rt_prof_run_begin(struct rt_prof *p)
{
	p->run = p->nruns;
	p->node = -1;
}

void rt_prof_run_end(struct rt_prof *p, int64_t t0)
{
	push(&p->runs, t0, rt_prof_now(), -1, p->run, NULL, 0);
	p->nruns++;
}

/* ---- start, stop, free ---- */

void rt_prof_free(struct rt_prof *p)
{
	if (!p)
		return;
	for (int i = 0; p->th && i < p->nthreads; i++) {
		free(p->th[i].ev);
		free(p->th[i].dims);
	}
	free(p->th);
	free(p->runs.ev);
	free(p->runs.dims);
	free(p);
}

static void clear(prof_list *l)
{
	l->n = l->ndims = l->dropped = 0;
}

int rt_profile_start(kiln_context *c)
{
	if (!c)
		return -1;
	c->err[0] = 0;
	if (!c->prof) {
		struct rt_prof *p = calloc(1, sizeof *p);
		if (p)
			p->th = calloc((size_t)c->nthreads, sizeof *p->th);
		if (!p || !p->th) {
			free(p);
			return rt_context_errorf(c, "profile: out of memory");
		}
		p->d = c->d;
		p->nthreads = c->nthreads;
		c->prof = p;
	}
	struct rt_prof *p = c->prof;
	for (int i = 0; i < p->nthreads; i++)
		clear(&p->th[i]);
	clear(&p->runs);
	p->run = p->nruns = 0;
	p->node = -1;
	p->origin = rt_prof_now();
	c->profiling = true;
	rt_pool_set_prof(c->pool, p);
	return 0;
}

int rt_profile_stop(kiln_context *c)
{
	if (!c)
		return -1;
	c->err[0] = 0;
	c->profiling = false;
	rt_pool_set_prof(c->pool, NULL);
	return 0;
}

/* ---- reading ---- */

size_t rt_profile_count(const kiln_context *c)
{
	const struct rt_prof *p = c ? c->prof : NULL;
	if (!p)
		return 0;
	size_t n = p->runs.n;
	for (int i = 0; i < p->nthreads; i++)
		n += p->th[i].n;
	return n;
}

/* The operand k's dims of an event (NULL when absent), and its rank. */
static const int64_t *opnd_dims(const rt_node_info *ni, const int64_t *dims, int k, int *rank)
{
	int64_t off = 0;
	for (int j = 0; j < k; j++)
		off += ni->opnd[2 * j + 1];
	*rank = (int)ni->opnd[2 * k + 1];
	return dims ? dims + off : NULL;
}

static double node_flops(const rt_node_info *ni, const int64_t *dims)
{
	if (!ni->flop_mul || !ni->flop_div || !dims || ni->nout < 1 || ni->flop_in < 0 ||
	    ni->flop_in >= ni->nin)
		return 0;
	int ro, rk;
	const int64_t *o = opnd_dims(ni, dims, ni->nin, &ro);
	const int64_t *k = opnd_dims(ni, dims, ni->flop_in, &rk);
	if (ni->flop_axis < 0 || ni->flop_axis >= rk)
		return 0;
	double n = 1;
	for (int j = 0; j < ro; j++)
		n *= (double)o[j];
	return n * (double)k[ni->flop_axis] * (double)ni->flop_mul / (double)ni->flop_div;
}

/* Event i as the public record; its dims (NULL if none) in *dims. */
static int get_event(const struct rt_prof *p, size_t i, kiln_profile_event *ev, const int64_t **dims)
{
	const prof_list *l = NULL;
	int thread = 0, kind = KILN_PROFILE_NODE;
	if (i < p->th[0].n) {
		l = &p->th[0];
	} else if ((i -= p->th[0].n) < p->runs.n) {
		l = &p->runs;
		kind = KILN_PROFILE_RUN;
	} else {
		i -= p->runs.n;
		for (thread = 1; thread < p->nthreads && i >= p->th[thread].n; thread++)
			i -= p->th[thread].n;
		if (thread == p->nthreads)
			return -1;
		l = &p->th[thread];
		kind = KILN_PROFILE_JOB;
	}
	const prof_ev *e = &l->ev[i];
	const rt_node_info *ni = e->node >= 0 && e->node < p->d->nnodes && p->d->nodes
		? &p->d->nodes[e->node] : NULL;
	*dims = e->dims >= 0 ? l->dims + e->dims : NULL;
	memset(ev, 0, sizeof *ev);
	ev->kind = kind;
	ev->thread = thread;
	ev->run = e->run;
	ev->node = ni ? e->node : -1;
	ev->op = ni ? ni->op : NULL;
	ev->name = ni ? ni->name : NULL;
	ev->fused_from = ni && ni->nfused > 0 ? ni->fused_from : NULL;
	ev->nfused = ni && ni->fused_from ? ni->nfused : 0;
	ev->start_ns = e->t0 - p->origin;
	ev->dur_ns = e->t1 - e->t0;
	ev->flops = ni && kind == KILN_PROFILE_NODE ? node_flops(ni, *dims) : 0;
	return 0;
}

int rt_profile_event(const kiln_context *c, size_t i, kiln_profile_event *ev, size_t evsize)
{
	const struct rt_prof *p = c ? c->prof : NULL;
	kiln_profile_event e;
	const int64_t *dims;
	if (!p || !ev || i >= rt_profile_count(c) || get_event(p, i, &e, &dims))
		return -1;
	memcpy(ev, &e, evsize < sizeof e ? evsize : sizeof e);
	return 0;
}

/* ---- the trace ---- */

/* Length of the valid UTF-8 sequence at s (1 to 4), 0 if not one. */
static int utf8_len(const unsigned char *s)
{
	int n = s[0] > 0xF4 ? 0 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
	if (!n)
		return 0;
	for (int k = 1; k < n; k++)
		if ((s[k] & 0xC0) != 0x80)
			return 0;
	if ((n == 3 && s[0] == 0xE0 && s[1] < 0xA0) || (n == 3 && s[0] == 0xED && s[1] >= 0xA0) ||
	    (n == 4 && s[0] == 0xF0 && s[1] < 0x90) || (n == 4 && s[0] == 0xF4 && s[1] >= 0x90))
		return 0;   /* overlong, surrogate, past U+10FFFF */
	return n;
}

/* s as the inside of a JSON string: quotes, backslashes and control bytes
 * escaped, bytes that are not UTF-8 written as the code point of the byte. */
static void json_chars(FILE *fp, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		int n = *p < 0x80 ? 1 : utf8_len(p);
		if (*p == '"' || *p == '\\')
			fprintf(fp, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f || n == 0)
			fprintf(fp, "\\u%04x", *p);
		else
			fwrite(p, 1, (size_t)n, fp);
		p += n ? n : 1;
	}
}

static const char *ort_dtype(int64_t dt)
{
	switch (dt) {
	case KILN_F32: return "float";
	case KILN_U8: return "uint8";
	case KILN_I8: return "int8";
	case KILN_U16: return "uint16";
	case KILN_I16: return "int16";
	case KILN_I32: return "int32";
	case KILN_I64: return "int64";
	case KILN_BOOL: return "bool";
	case KILN_F16: return "float16";
	case KILN_F64: return "double";
	case KILN_U32: return "uint32";
	case KILN_U64: return "uint64";
	case KILN_BF16: return "bfloat16";
	default: return "unknown";
	}
}

/* "key":[{"float":[1,128,768]},...] over operands [from, to), absent skipped */
static void type_shapes(FILE *fp, const char *key, const rt_node_info *ni, const int64_t *dims,
                        int from, int to)
{
	fprintf(fp, ",\"%s\":[", key);
	for (int k = from, first = 1; k < to; k++) {
		int rank;
		const int64_t *d = opnd_dims(ni, dims, k, &rank);
		if (!ni->opnd[2 * k])
			continue;
		fprintf(fp, "%s{\"%s\":[", first ? "" : ",", ort_dtype(ni->opnd[2 * k]));
		for (int j = 0; d && j < rank; j++)
			fprintf(fp, "%s%lld", j ? "," : "", (long long)d[j]);
		fputs("]}", fp);
		first = 0;
	}
	fputc(']', fp);
}

/* n strings as a JSON array. */
static void json_list(FILE *fp, const char *const *s, int n)
{
	fputc('[', fp);
	for (int k = 0; k < n; k++) {
		fprintf(fp, "%s\"", k ? "," : "");
		json_chars(fp, s[k]);
		fputc('"', fp);
	}
	fputc(']', fp);
}

static void write_event(FILE *fp, const kiln_profile_event *e, const int64_t *dims,
                        const rt_node_info *ni, int pid)
{
	bool node = e->kind == KILN_PROFILE_NODE;
	fprintf(fp, "{\"cat\":\"%s\",\"pid\":%d,\"tid\":%d,\"dur\":%lld.%03lld,\"ts\":%lld.%03lld,"
	        "\"ph\":\"X\",\"name\":\"", node ? "Node" : "Job", pid, e->thread,
	        (long long)(e->dur_ns / 1000), (long long)(e->dur_ns % 1000),
	        (long long)(e->start_ns / 1000), (long long)(e->start_ns % 1000));
	json_chars(fp, e->name ? e->name : "?");
	fprintf(fp, "%s\",\"args\":{\"op_name\":\"", node ? "_kernel_time" : "_job");
	json_chars(fp, e->op ? e->op : "?");
	fprintf(fp, "\",\"run\":%d", e->run);
	if (node && ni) {
		type_shapes(fp, "input_type_shape", ni, dims, 0, ni->nin);
		type_shapes(fp, "output_type_shape", ni, dims, ni->nin, ni->nin + ni->nout);
		if (e->flops > 0)
			fprintf(fp, ",\"flops\":%.0f", e->flops);
		if (ni->fused_from && ni->nfused > 0) {
			fputs(",\"fused_from\":", fp);
			json_list(fp, ni->fused_from, ni->nfused);
		}
	}
	fputs("}}", fp);
}

/* Opens path for writing, refusing what is not a regular file (a FIFO
 * must not block us); NULL with the message in c. */
static FILE *open_out(kiln_context *c, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0666);
	if (fd < 0) {
		rt_context_errorf(c, "%s: cannot write the profile: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		rt_context_errorf(c, "%s: cannot write the profile: not a regular file", path);
		close(fd);
		return NULL;
	}
	FILE *fp = fdopen(fd, "w");
	if (!fp) {
		rt_context_errorf(c, "%s: cannot write the profile: %s", path, strerror(errno));
		close(fd);
	}
	return fp;
}

int rt_profile_write(kiln_context *c, const char *path)
{
	if (!c)
		return -1;
	c->err[0] = 0;
	if (!path || !*path)
		return rt_context_errorf(c, "profile: no output path");
	FILE *fp = open_out(c, path);
	if (!fp)
		return -1;
	const struct rt_prof *p = c->prof;
	size_t n = rt_profile_count(c);
	int pid = (int)getpid();
	fputs("[\n", fp);
	for (size_t i = 0, k = 0; i < n; i++) {
		kiln_profile_event e;
		const int64_t *dims;
		if (get_event(p, i, &e, &dims) || e.kind == KILN_PROFILE_RUN)
			continue;
		fputs(k++ ? ",\n" : "", fp);
		write_event(fp, &e, dims, e.node >= 0 ? &p->d->nodes[e.node] : NULL, pid);
	}
	fputs("\n]\n", fp);
	bool bad = ferror(fp) != 0;
	if (fclose(fp) || bad)
		return rt_context_errorf(c, "%s: cannot write the profile: %s", path,
		                         errno ? strerror(errno) : "write error");
	return 0;
}

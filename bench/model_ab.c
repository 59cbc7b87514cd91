/* model_ab.c: two compiled models of the same graph (e.g. one linked
 * against main's runtime, one against a branch's), loaded in one process
 * and run in turn, run by run (which goes first alternates), so both meet
 * the same machine load; on a shared machine this separates a few percent
 * where `kiln bench` medians of separate processes do not.  Inputs: every
 * input i64 [batch, seq]; *mask* inputs all ones, inputs with an index
 * bound (token ids) (7 i + 1) mod bound, others zero (BERT-style models).
 *
 *   model_ab OLD.so NEW.so [BATCH=1] [SEQ=128] [THREADS=2] [PAIRS=20]
 *
 * Prints per model the median and minimum wall ms and process CPU ms per
 * run (the pool's spinning included), and the median ratio new/old of
 * neighbouring runs, wall and CPU, and whether the two models' outputs
 * (of their last runs) are the same bits (else the largest absolute
 * difference of f32 outputs).  Built by bench/model_ab.sh. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln.h"

static double now(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return v[n / 2];
}

/* output o of both models: the same bits, or how far apart */
static void print_diff(int o, const kiln_tensor *a, const kiln_tensor *b)
{
	if (a->nbytes != b->nbytes || a->dtype != b->dtype) {
		printf("output %d: different sizes or types\n", o);
		return;
	}
	if (!memcmp(a->data, b->data, a->nbytes)) {
		printf("output %d: the same bits\n", o);
		return;
	}
	double mx = 0;
	if (a->dtype == KILN_F32)
		for (size_t k = 0; k < a->nbytes / sizeof(float); k++) {
			double d = fabs((double)((const float *)a->data)[k] - ((const float *)b->data)[k]);
			mx = d > mx || d != d ? d : mx;
		}
	printf("output %d: differs (max abs %g)\n", o, mx);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: model_ab OLD.so NEW.so [BATCH] [SEQ] [THREADS] [PAIRS]\n");
		return 2;
	}
	int64_t B = argc > 3 ? atoll(argv[3]) : 1, S = argc > 4 ? atoll(argv[4]) : 128;
	int T = argc > 5 ? atoi(argv[5]) : 2, P = argc > 6 ? atoi(argv[6]) : 20;
	if (B < 1 || S < 1 || T < 1 || P < 1 || P > 10000) {
		fprintf(stderr, "model_ab: bad batch, sequence, threads or pairs\n");
		return 2;
	}
	kiln_model *m[2];
	kiln_context *c[2];
	for (int v = 0; v < 2; v++) {
		m[v] = kiln_model_load(argv[1 + v]);
		if (!m[v]) {
			fprintf(stderr, "model_ab: %s: %s\n", argv[1 + v], kiln_load_error());
			return 1;
		}
		c[v] = kiln_context_create(m[v], T);
		if (!c[v]) {
			fprintf(stderr, "model_ab: %s: no context\n", argv[1 + v]);
			return 1;
		}
	}
	int nin = kiln_model_num_inputs(m[0]), nout = kiln_model_num_outputs(m[0]);
	if (nin > 16 || nout > 16 || nin != kiln_model_num_inputs(m[1])) {
		fprintf(stderr, "model_ab: the models' inputs differ or are too many\n");
		return 1;
	}
	kiln_tensor in[16], out[2][16];
	memset(in, 0, sizeof in);
	memset(out, 0, sizeof out);
	for (int i = 0; i < nin; i++) {
		const kiln_io_info *io = kiln_model_input(m[0], i);
		int64_t bound = kiln_model_input_index_bound(m[0], i);
		int64_t *d = malloc((size_t)(B * S) * sizeof *d);
		if (!d || io->dtype != KILN_I64 || io->rank != 2) {
			fprintf(stderr, "model_ab: input %s is not i64 [batch, seq]\n", io->name);
			return 1;
		}
		for (int64_t k = 0; k < B * S; k++)
			d[k] = strstr(io->name, "mask") ? 1 : bound > 0 ? (7 * k + 1) % bound : 0;
		in[i] = (kiln_tensor){ KILN_I64, 2, { B, S }, d, (size_t)(B * S) * sizeof *d };
	}
	double *w[2], *u[2], *rw = malloc((size_t)P * sizeof(double)),
	       *ru = malloc((size_t)P * sizeof(double));
	for (int v = 0; v < 2; v++) {
		w[v] = malloc((size_t)P * sizeof(double));
		u[v] = malloc((size_t)P * sizeof(double));
	}
	for (int i = -2; i < P; i++) {
		for (int k = 0; k < 2; k++) {
			int v = (k ^ i) & 1;
			double w0 = now(CLOCK_MONOTONIC), u0 = now(CLOCK_PROCESS_CPUTIME_ID);
			if (kiln_run(c[v], in, nin, out[v], nout)) {
				fprintf(stderr, "model_ab: %s: %s\n", argv[1 + v], kiln_last_error(c[v]));
				return 1;
			}
			if (i >= 0) {
				u[v][i] = 1e3 * (now(CLOCK_PROCESS_CPUTIME_ID) - u0);
				w[v][i] = 1e3 * (now(CLOCK_MONOTONIC) - w0);
			}
		}
		if (i >= 0) {
			rw[i] = w[1][i] / w[0][i];
			ru[i] = u[1][i] / u[0][i];
		}
	}
	printf("batch %lld, seq %lld, %d threads, %d pairs\n", (long long)B, (long long)S, T, P);
	for (int v = 0; v < 2; v++) {
		double mw = median(w[v], P), mu = median(u[v], P);
		printf("%s %-40s wall median %8.2f min %8.2f ms | cpu median %8.2f min %8.2f ms\n",
		       v ? "new" : "old", argv[1 + v], mw, w[v][0], mu, u[v][0]);
	}
	printf("new/old median ratio of neighbouring runs: wall %.3f, cpu %.3f\n", median(rw, P),
	       median(ru, P));
	for (int o = 0; o < nout; o++)
		print_diff(o, &out[0][o], &out[1][o]);
	return 0;
}

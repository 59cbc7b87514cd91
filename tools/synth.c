/* Synthesized BERT-style inputs, the same values as shared/tools/ort_bench.mjs
 * uses, so kiln and ONNX Runtime are timed on the same data.
 *
 * Symbolic dims are bound by position: an integer input [batch, sequence]
 * (ids, masks, token types) -- or [batch, regions] when its name says it is
 * about the visual stream -- and a float input [batch, regions, ...]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "synth.h"

typedef struct Binding { const char *name; int64_t v; } Binding;

static bool is_visual(const char *name)
{
	return strstr(name, "visual") || strstr(name, "image") || strstr(name, "region") ||
	       strstr(name, "box");
}

int64_t synth_dim(const char *input, int dtype, int k, int64_t batch, int64_t seq, int64_t regions)
{
	bool fl = dtype == KILN_F32 || dtype == KILN_F64 || dtype == KILN_F16;
	bool vis = fl || is_visual(input);
	return k == 0 ? batch : k == 1 ? (vis ? regions : seq) : 1;
}

static int64_t bind(Binding *b, int *nb, const char *dim, int64_t want)
{
	char *end;
	long long c = strtoll(dim, &end, 10);
	if (*dim && !*end)
		return c;
	for (int i = 0; i < *nb; i++)
		if (!strcmp(b[i].name, dim))
			return b[i].v;
	if (*nb < 32)
		b[(*nb)++] = (Binding){dim, want};
	return want;
}

static void fill(const kiln_io_info *io, kiln_tensor *t, int64_t seq, int64_t vocab)
{
	size_t n = t->nbytes / cli_dtype_size(t->dtype);
	for (size_t i = 0; i < n; i++) {
		int64_t col = t->rank >= 2 ? (int64_t)(i % t->shape[t->rank - 1]) : (int64_t)i;
		if (t->dtype == KILN_F32) {
			((float *)t->data)[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
		} else if (t->dtype == KILN_I64 || t->dtype == KILN_I32) {
			int64_t v;
			if (strstr(io->name, "mask"))
				v = 1;
			else if (strstr(io->name, "type"))
				v = col >= seq / 2 && vocab > 1;
			else
				v = (100 + (int64_t)((i * 7919) % 20000)) % vocab;
			if (t->dtype == KILN_I64)
				((int64_t *)t->data)[i] = v;
			else
				((int32_t *)t->data)[i] = (int32_t)v;
		} else if (t->dtype == KILN_BOOL) {
			((uint8_t *)t->data)[i] = 1;
		}
	}
}

void synth_lengths(const kiln_model *m, SynthInputs *s, int64_t lo, int64_t hi)
{
	for (int i = 0; i < s->n; i++) {
		kiln_tensor *t = &s->t[i];
		if (!strstr(kiln_model_input(m, i)->name, "mask") || t->rank != 2)
			continue;
		int64_t B = t->shape[0], S = t->shape[1];
		for (int64_t b = 0; b < B; b++) {
			int64_t len = B > 1 ? lo + (hi - lo) * b / (B - 1) : hi;
			for (int64_t k = 0; k < S; k++) {
				int64_t j = b * S + k, v = k < len;
				switch (t->dtype) {
				case KILN_I64: ((int64_t *)t->data)[j] = v; break;
				case KILN_I32: ((int32_t *)t->data)[j] = (int32_t)v; break;
				case KILN_F32: ((float *)t->data)[j] = (float)v; break;
				case KILN_BOOL: ((uint8_t *)t->data)[j] = (uint8_t)v; break;
				default: break;
				}
			}
		}
	}
}

int synth_inputs(const kiln_model *m, int64_t batch, int64_t seq, int64_t regions, int64_t vocab,
                 SynthInputs *s)
{
	Binding b[32];
	int nb = 0;
	memset(s, 0, sizeof *s);
	s->n = kiln_model_num_inputs(m);
	if (s->n > SYNTH_MAX) {
		cli_error("bench: model has %d inputs, at most %d supported", s->n, SYNTH_MAX);
		return -1;
	}
	for (int i = 0; i < s->n; i++) {
		const kiln_io_info *io = kiln_model_input(m, i);
		kiln_tensor *t = &s->t[i];
		size_t n = 1;
		t->dtype = io->dtype;
		t->rank = io->rank;
		for (int k = 0; k < io->rank; k++) {
			int64_t want = synth_dim(io->name, io->dtype, k, batch, seq, regions);
			t->shape[k] = bind(b, &nb, io->dims[k], want);
			n *= (size_t)t->shape[k];
		}
		t->nbytes = n * cli_dtype_size(t->dtype);
		t->data = calloc(1, t->nbytes ? t->nbytes : 1);
		if (!t->data) {
			cli_error("bench: out of memory for input '%s'", io->name);
			return -1;
		}
		/* ids below --vocab, else below the rows of the table the input
		 * indexes (recorded by kiln compile), else BERT's 30522 */
		int64_t bound = kiln_model_input_index_bound(m, i);
		fill(io, t, seq, vocab > 0 ? vocab : bound > 0 ? bound : 30522);
	}
	return 0;
}

void synth_free(SynthInputs *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->t[i].data);
	s->n = 0;
}

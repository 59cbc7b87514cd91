/* A C program that runs a kiln-compiled BERT QA model through its typed
 * entry point (bert_qa.h, written by `kiln compile ... -o bert_qa.so`).
 *
 *   ./qa bert_qa.so [TOKEN_ID...]
 *
 * Prints the start and end logits and the answer span (the argmax of each);
 * with no ids it uses a fixed 12-token question+context. */
#include <stdio.h>
#include <stdlib.h>

#include "kiln.h"
#include "bert_qa.h"

#define MAXLEN 512

static int argmax(const float *v, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

int main(int argc, char **argv)
{
	static const int64_t fixed[] = {101, 2054, 2003, 1996, 3007, 102, 1996, 3007, 2003, 3000, 1012, 102};
	int64_t ids[MAXLEN], mask[MAXLEN], types[MAXLEN];
	float start[MAXLEN], end[MAXLEN];
	int n = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: %s bert_qa.so [TOKEN_ID...]\n", argv[0]);
		return 2;
	}
	for (int i = 2; i < argc && n < MAXLEN; i++)
		ids[n++] = strtoll(argv[i], NULL, 10);
	if (n == 0)
		for (; n < (int)(sizeof fixed / sizeof fixed[0]); n++)
			ids[n] = fixed[n] % 1024;   /* the bundled model's vocabulary is 1024 */
	int sep = n;
	for (int i = 0; i < n; i++) {
		mask[i] = 1;
		types[i] = i > sep ? 1 : 0;
		if (ids[i] == 102 && sep == n)
			sep = i;
	}

	kiln_model *m = kiln_model_load(argv[1]);
	if (!m) {
		fprintf(stderr, "qa: %s\n", kiln_load_error());
		return 1;
	}
	kiln_context *c = kiln_context_create(m, 2);
	if (!c) {
		fprintf(stderr, "qa: cannot create a context\n");
		kiln_model_free(m);
		return 1;
	}
	int rc = bert_qa_run(c, ids, mask, types, 1, n, start, end);
	if (rc) {
		fprintf(stderr, "qa: %s\n", kiln_last_error(c));
	} else {
		printf("tokens %d\nstart_logits", n);
		for (int i = 0; i < n; i++)
			printf(" %.6f", start[i]);
		printf("\nend_logits");
		for (int i = 0; i < n; i++)
			printf(" %.6f", end[i]);
		printf("\nanswer span [%d, %d]\n", argmax(start, n), argmax(end, n));
	}
	kiln_context_free(c);
	kiln_model_free(m);
	return rc ? 1 : 0;
}

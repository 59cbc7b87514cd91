/* raw_tensor.h: the tensor files kiln check and kiln-runner exchange when a
 * model runs on another architecture (under emulation): the host turns
 * input_K.pb into input_K.bin, the runner (which links the loader only, no
 * protobuf) runs the model and writes output_K.bin, the host compares.
 *
 * A file: "KILNRAW1", int32 dtype (kiln_dtype), int32 rank, int64
 * dims[KILN_MAX_RANK] (unused ones 0), uint64 nbytes, uint32 name length,
 * the name (no NUL), then nbytes of data; all little-endian (both x86-64
 * and aarch64 are).  Header-only: static functions for both programs. */
#ifndef KILN_RAW_TENSOR_H
#define KILN_RAW_TENSOR_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

#define RAW_MAGIC "KILNRAW1"
#define RAW_MAX_NAME 4096

typedef struct raw_head {
	char magic[8];
	int32_t dtype, rank;
	int64_t dims[KILN_MAX_RANK];
	uint64_t nbytes;
	uint32_t namelen;
} raw_head;

/* Writes t (and name, may be NULL) to path; 0, or -1 with errno set. */
static int raw_write(const char *path, const kiln_tensor *t, const char *name)
{
	raw_head h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, RAW_MAGIC, 8);
	h.dtype = (int32_t)t->dtype;
	h.rank = t->rank;
	for (int k = 0; k < t->rank && k < KILN_MAX_RANK; k++)
		h.dims[k] = t->shape[k];
	h.nbytes = t->nbytes;
	h.namelen = name ? (uint32_t)strlen(name) : 0;
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fwrite(&h, sizeof h, 1, f) == 1 && (!h.namelen || fwrite(name, h.namelen, 1, f) == 1) &&
	         (!t->nbytes || fwrite(t->data, t->nbytes, 1, f) == 1);
	if (fclose(f) || !ok)
		return -1;
	return 0;
}

/* Reads path into t (data malloc'd) and, if name is not NULL, the name
 * (malloc'd, NUL-terminated).  0, or -1 with *why set to a short reason. */
static int raw_read(const char *path, kiln_tensor *t, char **name, const char **why)
{
	raw_head h;
	char *nm = NULL;
	void *data = NULL;
	*why = "cannot open";
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	*why = "not a tensor file of kiln-runner";
	if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, RAW_MAGIC, 8) || h.rank < 0 ||
	    h.rank > KILN_MAX_RANK || h.namelen > RAW_MAX_NAME)
		goto bad;
	uint64_t n = 1;
	for (int k = 0; k < h.rank; k++) {
		if (h.dims[k] < 0 || (h.dims[k] && n > UINT64_MAX / (uint64_t)h.dims[k]))
			goto bad;
		n *= (uint64_t)h.dims[k];
	}
	nm = malloc(h.namelen + 1);
	data = malloc(h.nbytes ? h.nbytes : 1);
	*why = "out of memory";
	if (!nm || !data)
		goto bad;
	*why = "truncated";
	if ((h.namelen && fread(nm, h.namelen, 1, f) != 1) ||
	    (h.nbytes && fread(data, h.nbytes, 1, f) != 1))
		goto bad;
	nm[h.namelen] = 0;
	fclose(f);
	memset(t, 0, sizeof *t);
	t->dtype = (kiln_dtype)h.dtype;
	t->rank = h.rank;
	memcpy(t->shape, h.dims, sizeof h.dims);
	t->data = data;
	t->nbytes = h.nbytes;
	if (name)
		*name = nm;
	else
		free(nm);
	return 0;
bad:
	fclose(f);
	free(nm);
	free(data);
	return -1;
}

#endif

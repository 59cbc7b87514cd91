/* ONNX TensorProto decoding and the .pb tensor files of the ONNX backend
 * test layout (input_K.pb / output_K.pb).
 *
 * onnx_tensor_decode turns a TensorProto in any storage form (raw_data,
 * float_data, int32_data with ONNX's packing of small types, int64_data,
 * double_data, uint64_data) into row-major little-endian bytes, checking
 * that the amount of data matches the dims.  The model loader uses it for
 * initializers, Constant nodes and tensor attributes; pb_tensor_read and
 * pb_tensor_write use it for standalone tensor files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_import.h"
#include "onnx_private.h"

/* Largest tensor accepted, in bytes: far above any real model, far below
 * anything whose size arithmetic could overflow. */
#define MAX_TENSOR_BYTES ((uint64_t)1 << 46)

void onnx_dims_str(const int64_t *dims, int rank, char *buf, size_t n)
{
	size_t k = 0;
	k += (size_t)snprintf(buf, n, "[");
	for (int i = 0; i < rank && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
	if (k < n)
		snprintf(buf + k, n - k, "]");
}

static const char *dtype_str(DType t)
{
	return ir_dtype_name(t);
}

/* ONNX data_type -> DType; -1 with a message when kiln cannot hold it. */
static int map_dtype(int32_t dt, const char *file, const char *what, DType *out, Diag *diag)
{
	switch (dt) {
	case DT_F32: case DT_U8: case DT_I8: case DT_U16: case DT_I16: case DT_I32:
	case DT_I64: case DT_BOOL: case DT_F16: case DT_F64: case DT_U32: case DT_U64:
	case DT_BF16:
		*out = (DType)dt;
		return 0;
	case DT_UNDEF:
		return diag_fail(diag, "%s: %s: data type is not set", file, what);
	case DT_STRING:
		return diag_fail(diag, "%s: %s: string tensors are not supported", file, what);
	case 14: case 15:
		return diag_fail(diag, "%s: %s: complex tensors are not supported", file, what);
	default:
		return diag_fail(diag, "%s: %s: data type %d is not supported", file, what, (int)dt);
	}
}

int onnx_tensor_header(const Onnx__TensorProto *t, const char *file, const char *what,
                       OnnxData *o, Diag *diag)
{
	memset(o, 0, sizeof *o);
	if (!t)
		return diag_fail(diag, "%s: %s: missing tensor", file, what);
	if (map_dtype(t->has_data_type ? t->data_type : 0, file, what, &o->dtype, diag))
		return -1;
	if (t->n_dims > IR_MAX_RANK)
		return diag_fail(diag, "%s: %s: rank %zu exceeds kiln's maximum of %d", file, what,
		                 t->n_dims, IR_MAX_RANK);
	if (t->n_dims && !t->dims)
		return diag_fail(diag, "%s: %s: malformed dims", file, what);
	o->rank = (int)t->n_dims;
	uint64_t numel = 1;
	bool zero = false;
	for (int i = 0; i < o->rank; i++) {
		o->dims[i] = t->dims[i];
		if (t->dims[i] == 0)
			zero = true;
	}
	char ds[256];
	for (int i = 0; i < o->rank; i++) {
		if (o->dims[i] < 0) {
			onnx_dims_str(o->dims, o->rank, ds, sizeof ds);
			return diag_fail(diag, "%s: %s: dims %s has a negative dim", file, what, ds);
		}
		if (!zero && __builtin_mul_overflow(numel, (uint64_t)o->dims[i], &numel))
			numel = UINT64_MAX;
	}
	if (zero)
		numel = 0;
	size_t es = ir_dtype_size(o->dtype);
	if (numel > MAX_TENSOR_BYTES / es) {
		onnx_dims_str(o->dims, o->rank, ds, sizeof ds);
		return diag_fail(diag, "%s: %s: dims %s are too large", file, what, ds);
	}
	o->numel = (size_t)numel;
	o->nbytes = o->numel * es;
	if (t->segment)
		return diag_fail(diag, "%s: %s: segmented tensors are not supported", file, what);
	o->external = t->has_data_location &&
	              t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	return 0;
}

/* Copies int32_data into the element type (ONNX packs every type of at
 * most 16 bits, bool, f16 and bf16 included, one element per int32). */
static void unpack_int32(const int32_t *src, size_t n, DType t, void *dst)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t v = (uint32_t)src[i];
		switch (t) {
		case DT_BOOL: ((uint8_t *)dst)[i] = v != 0; break;
		case DT_U8: case DT_I8: ((uint8_t *)dst)[i] = (uint8_t)v; break;
		case DT_U16: case DT_I16: case DT_F16: case DT_BF16:
			((uint16_t *)dst)[i] = (uint16_t)v; break;
		default: ((int32_t *)dst)[i] = (int32_t)v; break;
		}
	}
}

static int count_mismatch(const char *file, const char *what, const char *field, size_t have,
                          const OnnxData *o, Diag *diag)
{
	char ds[256];
	onnx_dims_str(o->dims, o->rank, ds, sizeof ds);
	return diag_fail(diag, "%s: %s: %s has %zu elements, dims %s of %s need %zu", file, what,
	                 field, have, ds, dtype_str(o->dtype), o->numel);
}

int onnx_tensor_decode(const Onnx__TensorProto *t, const char *file, const char *what,
                       OnnxData *o, Diag *diag)
{
	if (onnx_tensor_header(t, file, what, o, diag))
		return -1;
	if (o->external)
		return 0;
	char ds[256];
	if (t->has_raw_data) {
		if (t->raw_data.len != o->nbytes) {
			onnx_dims_str(o->dims, o->rank, ds, sizeof ds);
			return diag_fail(diag, "%s: %s: raw_data has %zu bytes, dims %s of %s need %zu",
			                 file, what, t->raw_data.len, ds, dtype_str(o->dtype), o->nbytes);
		}
		if (o->nbytes && !t->raw_data.data)
			return diag_fail(diag, "%s: %s: malformed raw_data", file, what);
		o->data = t->raw_data.data;
		return 0;
	}
	const void *src = NULL;
	size_t have = 0;
	const char *field = "";
	switch (o->dtype) {
	case DT_F32: src = t->float_data; have = t->n_float_data; field = "float_data"; break;
	case DT_I64: src = t->int64_data; have = t->n_int64_data; field = "int64_data"; break;
	case DT_F64: src = t->double_data; have = t->n_double_data; field = "double_data"; break;
	case DT_U32: case DT_U64:
		src = t->uint64_data; have = t->n_uint64_data; field = "uint64_data"; break;
	default: src = t->int32_data; have = t->n_int32_data; field = "int32_data"; break;
	}
	if (have != o->numel)
		return count_mismatch(file, what, field, have, o, diag);
	if (o->numel == 0)
		return 0;
	if (!src)
		return diag_fail(diag, "%s: %s: malformed %s", file, what, field);
	o->owned = malloc(o->nbytes);
	if (!o->owned)
		return diag_fail(diag, "%s: %s: out of memory (%zu bytes)", file, what, o->nbytes);
	if (o->dtype == DT_U32) {
		const uint64_t *u = src;
		for (size_t i = 0; i < o->numel; i++)
			((uint32_t *)o->owned)[i] = (uint32_t)u[i];
	} else if (src == (const void *)t->int32_data && o->dtype != DT_I32) {
		unpack_int32(src, o->numel, o->dtype, o->owned);
	} else {
		memcpy(o->owned, src, o->nbytes);
	}
	o->data = o->owned;
	return 0;
}

void onnx_data_free(OnnxData *o)
{
	free(o->owned);
	o->owned = NULL;
	o->data = NULL;
}

int onnx_read_file(const char *path, void **buf, size_t *len, Diag *diag)
{
	*buf = NULL;
	*len = 0;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer; anything but
	 * a regular file (FIFO, device, directory) is refused before a read */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return diag_fail(diag, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st)) {
		int e = errno;
		close(fd);
		return diag_fail(diag, "%s: cannot stat: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return diag_fail(diag, "%s: is %s, not a regular file", path,
		                 S_ISDIR(st.st_mode) ? "a directory"
		                 : S_ISFIFO(st.st_mode) ? "a FIFO"
		                 : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
		                 : S_ISSOCK(st.st_mode) ? "a socket" : "special");
	}
	if ((uint64_t)st.st_size >= SIZE_MAX / 2) {
		close(fd);
		return diag_fail(diag, "%s: too large (%lld bytes)", path, (long long)st.st_size);
	}
	/* the size may change under us: read until EOF, growing as needed */
	size_t cap = (size_t)st.st_size + 1, n = 0;
	char *b = malloc(cap);
	for (;;) {
		if (!b) {
			close(fd);
			return diag_fail(diag, "%s: out of memory", path);
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(b);
			close(fd);
			return diag_fail(diag, "%s: cannot read: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap) {
			char *nb = cap > SIZE_MAX / 4 ? NULL : realloc(b, cap * 2);
			if (!nb)
				free(b);
			b = nb;
			cap *= 2;
		}
	}
	close(fd);
	*buf = b;
	*len = n;
	return 0;
}

int pb_tensor_read(const char *path, PbTensor *t, Diag *diag)
{
	memset(t, 0, sizeof *t);
	void *buf;
	size_t len;
	if (onnx_read_file(path, &buf, &len, diag))
		return -1;
	if (len && pb_guard(buf, len, &onnx__tensor_proto__descriptor, path, "ONNX tensor", diag)) {
		free(buf);
		return -1;
	}
	Onnx__TensorProto *tp = len ? onnx__tensor_proto__unpack(NULL, len, buf) : NULL;
	free(buf);
	if (!tp)
		return diag_fail(diag, "%s: not an ONNX tensor (protobuf parse failed%s)", path,
		                 len ? "" : ": empty file");
	char what[300];
	snprintf(what, sizeof what, "tensor '%s'", tp->name ? tp->name : "");
	OnnxData o;
	int rc = onnx_tensor_decode(tp, path, what, &o, diag);
	if (!rc && o.external)
		rc = diag_fail(diag, "%s: %s: external data is not supported in tensor files", path, what);
	if (!rc) {
		t->data = malloc(o.nbytes ? o.nbytes : 1);
		if (!t->data)
			rc = diag_fail(diag, "%s: %s: out of memory", path, what);
	}
	if (!rc) {
		if (o.nbytes)
			memcpy(t->data, o.data, o.nbytes);
		t->nbytes = o.nbytes;
		t->dtype = o.dtype;
		t->rank = o.rank;
		memcpy(t->dims, o.dims, sizeof t->dims);
		t->name = tp->name && tp->name[0] ? strdup(tp->name) : NULL;
	}
	onnx_data_free(&o);
	onnx__tensor_proto__free_unpacked(tp, NULL);
	return rc;
}

int pb_tensor_write(const char *path, const PbTensor *t, Diag *diag)
{
	size_t es = ir_dtype_size(t->dtype);
	if (!es)
		return diag_fail(diag, "%s: cannot write a tensor of data type %d", path, (int)t->dtype);
	if (t->rank < 0 || t->rank > IR_MAX_RANK)
		return diag_fail(diag, "%s: bad rank %d", path, t->rank);
	size_t numel = 1;
	for (int i = 0; i < t->rank; i++) {
		if (t->dims[i] < 0 ||
		    __builtin_mul_overflow(numel, (size_t)t->dims[i], &numel))
			return diag_fail(diag, "%s: bad dims", path);
	}
	if (numel * es != t->nbytes || (t->nbytes && !t->data))
		return diag_fail(diag, "%s: tensor has %zu bytes, its dims need %zu", path, t->nbytes,
		                 numel * es);
	Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
	int64_t dims[IR_MAX_RANK];
	memcpy(dims, t->dims, sizeof dims);
	tp.n_dims = (size_t)t->rank;
	tp.dims = dims;
	tp.has_data_type = 1;
	tp.data_type = (int32_t)t->dtype;
	tp.name = t->name;
	tp.has_raw_data = 1;
	tp.raw_data.len = t->nbytes;
	tp.raw_data.data = t->data;
	size_t len = onnx__tensor_proto__get_packed_size(&tp);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return diag_fail(diag, "%s: out of memory", path);
	onnx__tensor_proto__pack(&tp, buf);
	/* O_NONBLOCK: a FIFO without a reader fails instead of blocking; only
	 * regular files are written */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0644);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
		close(fd);
		free(buf);
		return diag_fail(diag, "%s: cannot write: not a regular file", path);
	}
	FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!f) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		free(buf);
		return diag_fail(diag, "%s: cannot write: %s", path, strerror(e));
	}
	size_t w = fwrite(buf, 1, len, f);
	free(buf);
	int err = (w != len) ? (errno ? errno : EIO) : 0;
	if (fclose(f) && !err)
		err = errno ? errno : EIO;
	if (err)
		return diag_fail(diag, "%s: cannot write: %s", path, strerror(err));
	return 0;
}

void pb_tensor_free(PbTensor *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->data);
	memset(t, 0, sizeof *t);
}

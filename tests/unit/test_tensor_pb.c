/* Tests of the TensorProto .pb reader/writer: round trips of every dtype,
 * the typed storage fields, refusals of bad files, and the ONNX backend
 * test data of a shared model (skipped when ../shared is absent). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "onnx_import.h"
#include "onnx.pb-c.h"

static char tmpdir[256];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln_pb_XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void tpath(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", tmpdir, name);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

static void write_proto(const char *path, const Onnx__TensorProto *t)
{
	size_t len = onnx__tensor_proto__get_packed_size(t);
	uint8_t *buf = malloc(len + 1);
	onnx__tensor_proto__pack(t, buf);
	write_bytes(path, buf, len);
	free(buf);
}

static void test_roundtrip(void **state)
{
	DType types[] = { DT_F32, DT_U8, DT_I8, DT_U16, DT_I16, DT_I32, DT_I64, DT_BOOL,
	                  DT_F16, DT_F64, DT_U32, DT_U64, DT_BF16 };
	for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
		PbTensor t = { 0 };
		t.name = "my_tensor";
		t.dtype = types[k];
		t.rank = 3;
		t.dims[0] = 2; t.dims[1] = 3; t.dims[2] = 1;
		t.nbytes = 6 * ir_dtype_size(types[k]);
		uint8_t data[64];
		for (size_t i = 0; i < t.nbytes; i++)
			data[i] = (uint8_t)(i * 7 + k);
		if (types[k] == DT_BOOL)
			for (size_t i = 0; i < t.nbytes; i++)
				data[i] &= 1;
		t.data = data;
		char p[300];
		tpath(p, sizeof p, "rt.pb");
		Diag d = { 0 };
		assert_int_equal(pb_tensor_write(p, &t, &d), 0);
		PbTensor r;
		if (pb_tensor_read(p, &r, &d))
			fail_msg("%s", d.msg);
		assert_string_equal(r.name, "my_tensor");
		assert_int_equal(r.dtype, types[k]);
		assert_int_equal(r.rank, 3);
		assert_int_equal(r.dims[1], 3);
		assert_int_equal(r.nbytes, t.nbytes);
		assert_memory_equal(r.data, data, t.nbytes);
		pb_tensor_free(&r);
	}
	/* scalar, and empty tensor, no name */
	PbTensor t = { 0 };
	t.dtype = DT_I64;
	t.rank = 0;
	int64_t v = -77;
	t.data = &v;
	t.nbytes = 8;
	char p[300];
	tpath(p, sizeof p, "scalar.pb");
	Diag d = { 0 };
	assert_int_equal(pb_tensor_write(p, &t, &d), 0);
	PbTensor r;
	assert_int_equal(pb_tensor_read(p, &r, &d), 0);
	assert_null(r.name);
	assert_int_equal(r.rank, 0);
	assert_int_equal(*(int64_t *)r.data, -77);
	pb_tensor_free(&r);
	t.rank = 2;
	t.dims[0] = 0;
	t.dims[1] = 5;
	t.nbytes = 0;
	t.data = NULL;
	assert_int_equal(pb_tensor_write(p, &t, &d), 0);
	assert_int_equal(pb_tensor_read(p, &r, &d), 0);
	assert_int_equal(r.nbytes, 0);
	assert_int_equal(r.dims[1], 5);
	pb_tensor_free(&r);
	/* inconsistent tensors are not written */
	t.nbytes = 8;
	t.data = &v;
	diag_clear(&d);
	assert_int_equal(pb_tensor_write(p, &t, &d), -1);
	assert_non_null(strstr(d.msg, p));
	t.dtype = DT_STRING;
	diag_clear(&d);
	assert_int_equal(pb_tensor_write(p, &t, &d), -1);
	diag_clear(&d);
	assert_int_equal(pb_tensor_write("/nonexistent/dir/x.pb", &(PbTensor){ .dtype = DT_F32, .nbytes = 4, .data = &v }, &d), -1);
	assert_non_null(strstr(d.msg, "/nonexistent/dir/x.pb"));
}

static void test_typed_fields(void **state)
{
	char p[300];
	tpath(p, sizeof p, "typed.pb");
	Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
	int64_t dims[1] = { 3 };
	t.n_dims = 1;
	t.dims = dims;
	t.has_data_type = 1;
	t.name = "h";
	/* f16 packed in int32_data */
	int32_t i32[3] = { 0x3c00, 0xc000, 0x7bff };
	t.data_type = DT_F16;
	t.n_int32_data = 3;
	t.int32_data = i32;
	write_proto(p, &t);
	PbTensor r;
	Diag d = { 0 };
	if (pb_tensor_read(p, &r, &d))
		fail_msg("%s", d.msg);
	assert_int_equal(r.nbytes, 6);
	assert_int_equal(((uint16_t *)r.data)[1], 0xc000);
	pb_tensor_free(&r);
	/* f32 float_data */
	float f[3] = { 1.5f, -2, 3 };
	t.n_int32_data = 0;
	t.data_type = DT_F32;
	t.n_float_data = 3;
	t.float_data = f;
	write_proto(p, &t);
	assert_int_equal(pb_tensor_read(p, &r, &d), 0);
	assert_memory_equal(r.data, f, 12);
	pb_tensor_free(&r);
	/* count mismatch */
	t.n_float_data = 2;
	write_proto(p, &t);
	diag_clear(&d);
	assert_int_equal(pb_tensor_read(p, &r, &d), -1);
	assert_non_null(strstr(d.msg, p));
	assert_non_null(strstr(d.msg, "tensor 'h': float_data has 2 elements, dims [3] of f32 need 3"));
	/* raw_data too short */
	t.n_float_data = 0;
	t.has_raw_data = 1;
	t.raw_data.data = (uint8_t *)f;
	t.raw_data.len = 8;
	write_proto(p, &t);
	diag_clear(&d);
	assert_int_equal(pb_tensor_read(p, &r, &d), -1);
	assert_non_null(strstr(d.msg, "tensor 'h': raw_data has 8 bytes, dims [3] of f32 need 12"));
	/* strings refused */
	t.has_raw_data = 0;
	t.data_type = DT_STRING;
	write_proto(p, &t);
	diag_clear(&d);
	assert_int_equal(pb_tensor_read(p, &r, &d), -1);
	assert_non_null(strstr(d.msg, "tensor 'h'"));
	assert_non_null(strstr(d.msg, "string"));
}

static void test_bad_files(void **state)
{
	char p[300];
	Diag d = { 0 };
	PbTensor r;
	assert_int_equal(pb_tensor_read("/nonexistent/x.pb", &r, &d), -1);
	assert_non_null(strstr(d.msg, "/nonexistent/x.pb: "));
	tpath(p, sizeof p, "empty.pb");
	write_bytes(p, "", 0);
	diag_clear(&d);
	assert_int_equal(pb_tensor_read(p, &r, &d), -1);
	assert_non_null(strstr(d.msg, p));
	tpath(p, sizeof p, "junk.pb");
	uint8_t junk[300];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 131 + 17);
	write_bytes(p, junk, sizeof junk);
	diag_clear(&d);
	assert_int_equal(pb_tensor_read(p, &r, &d), -1);
	assert_non_null(strstr(d.msg, p));
	/* truncated: every prefix fails or reads cleanly */
	PbTensor t = { .name = "x", .dtype = DT_F32, .rank = 1, .dims = { 8 }, .nbytes = 32 };
	float f[8] = { 0 };
	t.data = f;
	tpath(p, sizeof p, "full.pb");
	assert_int_equal(pb_tensor_write(p, &t, &d), 0);
	FILE *fp = fopen(p, "rb");
	uint8_t buf[256];
	size_t n = fread(buf, 1, sizeof buf, fp);
	fclose(fp);
	tpath(p, sizeof p, "trunc.pb");
	for (size_t k = 1; k < n; k++) {
		write_bytes(p, buf, k);
		diag_clear(&d);
		int rc = pb_tensor_read(p, &r, &d);
		if (rc == 0)
			pb_tensor_free(&r);
		else
			assert_non_null(strstr(d.msg, p));
	}
	write_bytes(p, buf, n - 3);
	diag_clear(&d);
	assert_int_equal(pb_tensor_read(p, &r, &d), -1);
}

/* The shared model's backend-test data: input_0 is int64 [2,16] ids,
 * output_0 f32 [2,16,64]. */
static void test_shared_data(void **state)
{
	char p[512];
	snprintf(p, sizeof p, "%s/../shared/models/bert-legacy14/test_data_set_0/input_0.pb",
	         KILN_SOURCE_DIR);
	if (access(p, R_OK))
		skip();
	PbTensor r;
	Diag d = { 0 };
	if (pb_tensor_read(p, &r, &d))
		fail_msg("%s", d.msg);
	assert_int_equal(r.dtype, DT_I64);
	assert_int_equal(r.rank, 2);
	assert_int_equal(r.dims[0], 2);
	assert_int_equal(r.dims[1], 16);
	assert_int_equal(r.nbytes, 2 * 16 * 8);
	for (int i = 0; i < 32; i++) {
		int64_t id = ((int64_t *)r.data)[i];
		assert_true(id >= 0 && id < 1024);
	}
	/* round trip through the writer gives identical contents */
	char q[300];
	tpath(q, sizeof q, "copy.pb");
	assert_int_equal(pb_tensor_write(q, &r, &d), 0);
	PbTensor c;
	assert_int_equal(pb_tensor_read(q, &c, &d), 0);
	assert_int_equal(c.nbytes, r.nbytes);
	assert_memory_equal(c.data, r.data, r.nbytes);
	pb_tensor_free(&c);
	pb_tensor_free(&r);
	snprintf(p, sizeof p, "%s/../shared/models/bert-legacy14/test_data_set_0/output_0.pb",
	         KILN_SOURCE_DIR);
	if (pb_tensor_read(p, &r, &d))
		fail_msg("%s", d.msg);
	assert_int_equal(r.dtype, DT_F32);
	assert_int_equal(r.rank, 3);
	assert_int_equal(r.dims[2], 64);
	assert_int_equal(r.nbytes, 2 * 16 * 64 * 4);
	pb_tensor_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_typed_fields),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_shared_data),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

/* Op name lookup (the op info table is generated in schema.c), and
 * dtype names, sizes and classes. */
#include <string.h>

#include "ir.h"

const char *ir_opname(Op op)
{
	if ((int)op < 0 || op >= OP_COUNT)
		return "?";
	return ir_opinfo[op].name;
}

int ir_op_lookup(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < OP_COUNT; i++)
		if (!strcmp(ir_opinfo[i].name, name))
			return i;
	return -1;
}

static const struct { DType t; const char *name; size_t size; } dtypes[] = {
	{ DT_F32, "f32", 4 }, { DT_U8, "u8", 1 }, { DT_I8, "i8", 1 },
	{ DT_U16, "u16", 2 }, { DT_I16, "i16", 2 }, { DT_I32, "i32", 4 },
	{ DT_I64, "i64", 8 }, { DT_STRING, "string", 0 }, { DT_BOOL, "bool", 1 },
	{ DT_F16, "f16", 2 }, { DT_F64, "f64", 8 }, { DT_U32, "u32", 4 },
	{ DT_U64, "u64", 8 }, { DT_BF16, "bf16", 2 },
};
#define NDTYPES (int)(sizeof dtypes / sizeof dtypes[0])

const char *ir_dtype_name(DType t)
{
	for (int i = 0; i < NDTYPES; i++)
		if (dtypes[i].t == t)
			return dtypes[i].name;
	return "undef";
}

int ir_dtype_lookup(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < NDTYPES; i++)
		if (!strcmp(dtypes[i].name, name))
			return dtypes[i].t;
	if (!strcmp(name, "undef"))
		return DT_UNDEF;
	return -1;
}

size_t ir_dtype_size(DType t)
{
	for (int i = 0; i < NDTYPES; i++)
		if (dtypes[i].t == t)
			return dtypes[i].size;
	return 0;
}

bool ir_dtype_is_float(DType t)
{
	return t == DT_F32 || t == DT_F16 || t == DT_F64 || t == DT_BF16;
}

bool ir_dtype_is_int(DType t)
{
	switch (t) {
	case DT_U8: case DT_I8: case DT_U16: case DT_I16: case DT_I32:
	case DT_I64: case DT_U32: case DT_U64:
		return true;
	default:
		return false;
	}
}

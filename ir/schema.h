/* The op schema: what every op of ir/ops.def looks like in kiln's IR --
 * named inputs and outputs, the dtypes kiln runs it on, its attributes
 * (type, default, required, the values kiln implements).  Generated from
 * ops.def by schema.c; the verifier checks graphs against it and
 * `kiln ops` prints it.  The IR form of a primitive op is its newest ONNX
 * form (up to opset 21); the frontend turns older forms into it. */
#ifndef KILN_IR_SCHEMA_H
#define KILN_IR_SCHEMA_H

#include "ir.h"

/* A set of dtypes: bit (1u << DType) per member. */
typedef uint32_t IrTypeSet;
#define TS_(t) (1u << (t))
#define TS_F32 TS_(DT_F32)
#define TS_F64 TS_(DT_F64)
#define TS_I64 TS_(DT_I64)
#define TS_BOOL TS_(DT_BOOL)
#define TS_FLT (TS_F32 | TS_F64)                                  /* float math kernels */
#define TS_FLOATS (TS_FLT | TS_(DT_F16) | TS_(DT_BF16))
#define TS_INT (TS_(DT_I8) | TS_(DT_I16) | TS_(DT_I32) | TS_I64 | TS_(DT_U8) | TS_(DT_U16) | \
                TS_(DT_U32) | TS_(DT_U64))
#define TS_IDX (TS_(DT_I32) | TS_I64)                             /* indices, axes */
#define TS_SNUM (TS_FLT | TS_(DT_I8) | TS_(DT_I32) | TS_I64)      /* Abs Neg Relu Sign */
#define TS_ARITH (TS_FLT | TS_(DT_F16) | TS_INT)                  /* Add .. Max Min Sum */
#define TS_CMP (TS_ARITH | TS_BOOL)
#define TS_NUM (TS_FLOATS | TS_INT)                               /* every number */
#define TS_ANY (TS_NUM | TS_BOOL)                                 /* every dtype but string */
#define TS_RED (TS_FLT | TS_IDX)                                  /* Reduce*, CumSum */
#define TS_MM TS_RED                                              /* MatMul */
#define TS_ARG (TS_FLT | TS_IDX | TS_(DT_I8) | TS_(DT_U8))        /* ArgMax ArgMin */
#define TS_CLIP TS_ARG
#define TS_RANGE (TS_FLOATS | TS_IDX | TS_(DT_I16))
#define TS_Q8 (TS_(DT_U8) | TS_(DT_I8))                     /* quantized values */
#define TS_COS (TS_ARG | TS_BOOL)             /* ConstantOfShape's value dtypes (emit_attrs.c) */

/* type variables of an op (ONNX's T, T1, ...) */
enum { IRT_T, IRT_T1, IRT_T2, IRT_T3, IR_NTYPEVARS };

enum IrIoKind {
	IO_REQ,     /* required */
	IO_OPT,     /* optional */
	IO_VAR,     /* variadic, one or more (last only) */
	IO_OFF,     /* optional; if present, a constant false/zero (the rest is not implemented) */
};

typedef struct IrIoSchema {
	const char *name;
	uint8_t kind;          /* enum IrIoKind */
	uint8_t tv;            /* IRT_* */
} IrIoSchema;

enum IrAttrCheck {
	AC_ANY,                /* any value of the kind */
	AC_RANGE,              /* int in [lo, hi] */
	AC_ONEOF,              /* string, one of oneof's '|'-separated words */
	AC_DTYPE,              /* int naming a dtype kiln has (not string) */
};

typedef struct IrAttrSchema {
	const char *name;
	uint8_t kind;          /* AttrKind */
	bool required;
	bool legacy;           /* an older ONNX form kiln still implements */
	const char *dflt;      /* default as printed; NULL: none */
	uint8_t check;         /* enum IrAttrCheck */
	int64_t lo, hi;
	const char *oneof;
} IrAttrSchema;

typedef struct IrOpSchema {
	const char *name;      /* NULL: the op has no schema (a bug ir_schema_check finds) */
	const IrIoSchema *in, *out;
	int nin, nout;
	IrTypeSet types[IR_NTYPEVARS];
	const IrAttrSchema *attrs;
	int nattrs;
} IrOpSchema;

/* The schema of op, NULL if op is out of range. */
const IrOpSchema *ir_schema(Op op);
/* The attribute's schema, NULL if op has no attribute of that name. */
const IrAttrSchema *ir_schema_attr(Op op, const char *name);
/* A fused op's attribute: its slot in the ia (int) or fa (float) array the
 * runtime gets (runtime/fused_attrs.def), -1 if it has none. */
int ir_fused_slot(Op op, const char *name, bool *isfloat);
/* "f32|f64|i32" (the set's dtype names joined by '|', "none" when empty). */
int ir_typeset_str(IrTypeSet s, char *buf, size_t n);
const char *ir_attr_kind_name(AttrKind k);   /* "int", "floats", ... */
/* Internal consistency of the table (every op has a schema, names unique,
 * variadics last, type variables used are declared): 0 or -1 with diag. */
int ir_schema_check(Diag *diag);

/* Is the attribute value allowed (kind and check)?  0, or -1 with a
 * message in why ("is of type string, must be int", "is 2; kiln implements
 * 0 to 1", ...). */
int ir_schema_attr_ok(const IrAttrSchema *as, const Attr *a, char *why, size_t n);

#endif

/* pb_guard.c: a bounded pre-scan of protobuf wire data, run before
 * protobuf-c unpacks it.
 *
 * protobuf-c unpacks nested messages recursively with no depth limit: a
 * 35 KB model with a TypeProto nested 5,000 levels deep (or attribute
 * subgraphs nested 10,000 deep) overflows the stack.  It also cuts string
 * fields at an embedded NUL byte without a word, so a name would bind to
 * its prefix.  This scanner walks the same bytes with an explicit stack of
 * at most PB_MAX_DEPTH frames, driven by the protobuf-c descriptors: for
 * every length-delimited field whose type is a message it descends, for
 * every string field it looks for a NUL byte, and it refuses malformed wire
 * data (truncated varints, lengths beyond their message, groups, which
 * protobuf-c does not read either).  It also counts the repeated fields of
 * PB_LIMITS (nodes, a node's outputs, ...), so that a hostile model of 10^7
 * empty nodes is one line before protobuf-c allocates a struct for each.  Unknown fields are skipped by their
 * wire type, as protobuf-c does. */
#include <stdio.h>
#include <string.h>

#include "onnx_private.h"

enum {
#define X(msg, num, field, owner, up, limit, what) PB_LIM_##msg##_##field##_##up,
	PB_LIMITS(X)
#undef X
	PB_NLIMITS
};

typedef struct Limit {
	const ProtobufCMessageDescriptor *msg, *owner;
	unsigned num, up;
	uint32_t limit;
	const char *what;
} Limit;

static const Limit limits[PB_NLIMITS] = {
#define X(msg, num, field, owner, up, limit, what) \
	{ &onnx__##msg##__descriptor, &onnx__##owner##__descriptor, num, up, limit, what },
	PB_LIMITS(X)
#undef X
};

typedef struct Frame {
	const ProtobufCMessageDescriptor *desc;
	size_t end;          /* where this message's bytes end */
	uint32_t count[PB_NLIMITS];  /* PB_LIMITS counted in this message */
} Frame;

/* Counts field num of the message at st[depth] against PB_LIMITS; -1 with
 * diag when one is exceeded. */
static int count_field(Frame *st, int depth, uint64_t num, const char *file, Diag *diag)
{
	for (int i = 0; i < PB_NLIMITS; i++) {
		const Limit *l = &limits[i];
		if (st[depth].desc != l->msg || num != l->num || depth < (int)l->up ||
		    st[depth - (int)l->up].desc != l->owner)
			continue;
		if (++st[depth - (int)l->up].count[i] > l->limit)
			return diag_fail(diag, "%s: more than %u %s (kiln's limit)", file,
			                 (unsigned)l->limit, l->what);
	}
	return 0;
}

/* Reads a varint at *pos (< end); -1 if it is cut or longer than 10 bytes. */
static int read_varint(const uint8_t *b, size_t end, size_t *pos, uint64_t *v)
{
	uint64_t r = 0;
	for (int i = 0; i < 10; i++) {
		if (*pos >= end)
			return -1;
		uint8_t c = b[(*pos)++];
		r |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

/* "'abc...'" of at most 40 printable bytes of a string that has a NUL */
static void quote_prefix(const uint8_t *s, size_t n, char *out, size_t outn)
{
	size_t k = 0;
	out[k++] = '\'';
	for (size_t i = 0; i < n && i < 40 && k + 6 < outn; i++)
		k += (size_t)snprintf(out + k, outn - k, s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\'
		                      ? "%c" : "\\x%02x", s[i]);
	snprintf(out + k, outn - k, "%s'", n > 40 ? "..." : "");
}

int pb_guard(const void *buf, size_t len, const ProtobufCMessageDescriptor *root,
             const char *file, const char *kind, Diag *diag)
{
	const uint8_t *b = buf;
	Frame st[PB_MAX_DEPTH + 1];
	int depth = 0;
	st[0] = (Frame){ root, len, { 0 } };
	size_t pos = 0;
	for (;;) {
		while (depth > 0 && pos == st[depth].end)
			depth--;
		if (pos == st[depth].end)
			return 0;                 /* depth 0 ends at len */
		size_t at = pos, end = st[depth].end;
		uint64_t tag, n;
		if (read_varint(b, end, &pos, &tag))
			return diag_fail(diag, "%s: not an %s (malformed protobuf: truncated tag at byte %zu)",
			                 file, kind, at);
		unsigned wt = (unsigned)(tag & 7);
		uint64_t num = tag >> 3;
		if (num == 0 || num > 0x1fffffff)
			return diag_fail(diag, "%s: not an %s (malformed protobuf: field number %llu at byte %zu)",
			                 file, kind, (unsigned long long)num, at);
		const ProtobufCFieldDescriptor *f =
			protobuf_c_message_descriptor_get_field(st[depth].desc, (unsigned)num);
		if (f && count_field(st, depth, num, file, diag))
			return -1;
		switch (wt) {
		case 0:
			if (read_varint(b, end, &pos, &n))
				return diag_fail(diag, "%s: not an %s (malformed protobuf: truncated varint at byte %zu)",
				                 file, kind, at);
			break;
		case 1:
		case 5: {
			size_t w = wt == 1 ? 8 : 4;
			if (end - pos < w)
				return diag_fail(diag, "%s: not an %s (malformed protobuf: field cut at byte %zu)",
				                 file, kind, at);
			pos += w;
			break;
		}
		case 2:
			if (read_varint(b, end, &pos, &n))
				return diag_fail(diag, "%s: not an %s (malformed protobuf: truncated length at byte %zu)",
				                 file, kind, at);
			if (n > end - pos)
				return diag_fail(diag, "%s: not an %s (malformed protobuf: field of %llu bytes at byte %zu runs past its end)",
				                 file, kind, (unsigned long long)n, at);
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				if (depth == PB_MAX_DEPTH)
					return diag_fail(diag, "%s: protobuf nesting deeper than %d levels",
					                 file, PB_MAX_DEPTH);
				depth++;
				st[depth] = (Frame){ f->descriptor, pos + (size_t)n, { 0 } };
				continue;        /* pos stays at the submessage's first byte */
			}
			if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(b + pos, 0, (size_t)n)) {
				char q[200];
				quote_prefix(b + pos, (size_t)n, q, sizeof q);
				return diag_fail(diag, "%s: %s.%s %s has an embedded NUL byte",
				                 file, st[depth].desc->short_name, f->name, q);
			}
			pos += (size_t)n;
			break;
		default:
			return diag_fail(diag, "%s: not an %s (malformed protobuf: wire type %u at byte %zu)",
			                 file, kind, wt, at);
		}
	}
}

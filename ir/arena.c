/* Arena: a bump allocator for everything a Graph owns that never shrinks
 * (strings, attributes, constant data, node operand arrays).  Memory is
 * carved out of malloc'd chunks; ir_arena_free releases all of it at once.
 * Allocations are zeroed.  Out of memory aborts (there is no sensible way
 * to continue compiling). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#include "ir.h"

#define CHUNK_SIZE (64 * 1024)

typedef struct Chunk {
	struct Chunk *next;
	size_t size, used;     /* bytes of data[] */
	_Alignas(64) unsigned char data[];
} Chunk;

struct Arena {
	Chunk *head;           /* current chunk (bump from here) */
	Chunk *big;            /* dedicated chunks for large allocations */
};

static void *xcalloc(size_t n)
{
	void *p = calloc(1, n);
	if (!p) {
		fprintf(stderr, "kiln: out of memory (%zu bytes)\n", n);
		abort();
	}
	return p;
}

/* Chunks are 64-byte aligned so data[] is too (malloc only promises 16). */
static Chunk *chunk_new(size_t size)
{
	size_t total = (sizeof(Chunk) + size + 63) & ~(size_t)63;
	Chunk *c = aligned_alloc(64, total);
	if (!c) {
		fprintf(stderr, "kiln: out of memory (%zu bytes)\n", total);
		abort();
	}
	memset(c, 0, total);
	c->size = size;
	return c;
}

Arena *ir_arena_new(void)
{
	return xcalloc(sizeof(Arena));
}

void *ir_arena_alloc(Arena *a, size_t n, size_t align)
{
	if (align == 0)
		align = 1;
	if (align > 64 || (align & (align - 1)))
		align = 64;                /* chunk data is 64-byte aligned */
	if (n == 0)
		n = 1;
	/* large: a chunk of its own, so the bump chunk is not wasted */
	if (n > CHUNK_SIZE / 4) {
		if (n > SIZE_MAX - sizeof(Chunk) - 64) {
			fprintf(stderr, "kiln: allocation too large (%zu bytes)\n", n);
			abort();
		}
		Chunk *c = chunk_new(n);
		c->used = n;
		c->next = a->big;
		a->big = c;
		return c->data;
	}
	Chunk *c = a->head;
	size_t off = c ? (c->used + align - 1) & ~(align - 1) : 0;
	if (!c || off + n > c->size) {
		c = chunk_new(CHUNK_SIZE);
		c->next = a->head;
		a->head = c;
		off = 0;
	}
	c->used = off + n;
	return c->data + off;      /* zeroed by calloc, never reused */
}

char *ir_arena_strdup(Arena *a, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *p = ir_arena_alloc(a, n, 1);
	memcpy(p, s, n);
	return p;
}

static void chunks_free(Chunk *c)
{
	while (c) {
		Chunk *next = c->next;
		free(c);
		c = next;
	}
}

void ir_arena_free(Arena *a)
{
	if (!a)
		return;
	chunks_free(a->head);
	chunks_free(a->big);
	free(a);
}

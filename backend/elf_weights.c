/* elf_weights.c: the embedded weights as a relocatable ELF64 object, written
 * straight from the blob (no weights.bin, no `as` reading it back).
 *
 * Layout: ELF header, section headers, .symtab, .strtab, .shstrtab, padding
 * to 64, then the blob.  Everything but the blob goes out in one write; the
 * blob follows straight from be->blob (no copy in memory).
 *
 * Sections: null, .lrodata.kiln_weights (the blob, align 64; SHF_X86_64_LARGE
 * on x86_64, so the linker places it after .data and .bss and weights over
 * 2 GB leave the 32-bit relocations of code and small data in reach),
 * .note.GNU-stack (empty: the stack stays non-executable), .symtab, .strtab,
 * .shstrtab.  One symbol: kiln__weights, global, hidden, object, sized.
 *
 * The object is for x86_64 or, with aarch64 set (--target-triple=aarch64-...),
 * for aarch64, whatever the host.  Only written on hosts that are ELF64
 * little-endian x86_64 or aarch64; elsewhere be_weights_obj_native() is
 * false and link.c assembles the weights. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "be.h"

#if defined(__ELF__) && defined(__LP64__) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && (defined(__x86_64__) || defined(__aarch64__))
#define ELFW_NATIVE 1
#else
#define ELFW_NATIVE 0
#endif

bool be_weights_obj_native(void)
{
	return ELFW_NATIVE;
}

#if ELFW_NATIVE
#include <elf.h>

#ifndef SHF_X86_64_LARGE
#define SHF_X86_64_LARGE 0x10000000 /* x86-64 psABI; glibc's elf.h lacks it */
#endif


enum { S_NULL, S_DATA, S_STACK, S_SYMTAB, S_STRTAB, S_SHSTRTAB, S_COUNT };

#define ELFW_ALIGN 64
static const char shstrtab[] = "\0.lrodata.kiln_weights\0.note.GNU-stack\0.symtab\0.strtab\0.shstrtab";
/* offsets of the names above */
enum { N_DATA = 1, N_STACK = 23, N_SYMTAB = 39, N_STRTAB = 47, N_SHSTRTAB = 55 };
static const char strtab[] = "\0kiln__weights";

/* Everything before the blob, built in memory (a few hundred bytes). */
typedef struct Head {
	Elf64_Ehdr eh;
	Elf64_Shdr sh[S_COUNT];
	Elf64_Sym sym[2];
	char strtab[sizeof strtab];
	char shstrtab[sizeof shstrtab];
	char pad[ELFW_ALIGN];
} Head;

static void set_shdr(Elf64_Shdr *s, Elf64_Word name, Elf64_Word type, Elf64_Xword flags,
                     Elf64_Off off, Elf64_Xword size, Elf64_Xword align)
{
	s->sh_name = name;
	s->sh_type = type;
	s->sh_flags = flags;
	s->sh_offset = off;
	s->sh_size = size;
	s->sh_addralign = align;
}

/* Fills h for a blob of n bytes; returns the file offset of the blob. */
static size_t build_head(Head *h, size_t n, bool aarch64)
{
	memset(h, 0, sizeof *h);
	Elf64_Ehdr *e = &h->eh;
	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_ident[EI_VERSION] = EV_CURRENT;
	e->e_ident[EI_OSABI] = ELFOSABI_NONE;
	e->e_type = ET_REL;
	e->e_machine = aarch64 ? EM_AARCH64 : EM_X86_64;
	e->e_version = EV_CURRENT;
	e->e_shoff = offsetof(Head, sh);
	e->e_ehsize = sizeof(Elf64_Ehdr);
	e->e_shentsize = sizeof(Elf64_Shdr);
	e->e_shnum = S_COUNT;
	e->e_shstrndx = S_SHSTRTAB;

	size_t blob_off = (offsetof(Head, pad) + ELFW_ALIGN - 1) / ELFW_ALIGN * ELFW_ALIGN;
	set_shdr(&h->sh[S_DATA], N_DATA, SHT_PROGBITS,
	         aarch64 ? SHF_ALLOC : SHF_ALLOC | SHF_X86_64_LARGE, blob_off, n, ELFW_ALIGN);
	set_shdr(&h->sh[S_STACK], N_STACK, SHT_PROGBITS, 0, blob_off, 0, 1);
	set_shdr(&h->sh[S_SYMTAB], N_SYMTAB, SHT_SYMTAB, 0, offsetof(Head, sym), sizeof h->sym, 8);
	h->sh[S_SYMTAB].sh_link = S_STRTAB;
	h->sh[S_SYMTAB].sh_info = 1; /* index of the first non-local symbol */
	h->sh[S_SYMTAB].sh_entsize = sizeof(Elf64_Sym);
	set_shdr(&h->sh[S_STRTAB], N_STRTAB, SHT_STRTAB, 0, offsetof(Head, strtab), sizeof strtab, 1);
	set_shdr(&h->sh[S_SHSTRTAB], N_SHSTRTAB, SHT_STRTAB, 0, offsetof(Head, shstrtab),
	         sizeof shstrtab, 1);

	Elf64_Sym *s = &h->sym[1];
	s->st_name = 1;
	s->st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT);
	s->st_other = STV_HIDDEN;
	s->st_shndx = S_DATA;
	s->st_value = 0;
	s->st_size = n;
	memcpy(h->strtab, strtab, sizeof strtab);
	memcpy(h->shstrtab, shstrtab, sizeof shstrtab);
	return blob_off;
}

int be_write_weights_obj(const char *path, const void *blob, size_t n, bool aarch64, Diag *diag)
{
	_Static_assert(sizeof shstrtab == N_SHSTRTAB + sizeof ".shstrtab", "shstrtab offsets");
	Head h;
	size_t blob_off = build_head(&h, n, aarch64);
	FILE *f = fopen(path, "wb");
	if (!f)
		return diag_fail(diag, "cannot write %s: %s", path, strerror(errno));
	bool ok = fwrite(&h, 1, blob_off, f) == blob_off && (n == 0 || fwrite(blob, 1, n, f) == n);
	if (fclose(f) != 0 || !ok) {
		unlink(path);
		return diag_fail(diag, "cannot write %s: %s", path, strerror(errno));
	}
	return 0;
}

#else

int be_write_weights_obj(const char *path, const void *blob, size_t n, bool aarch64, Diag *diag)
{
	(void)blob;
	(void)n;
	(void)aarch64;
	return diag_fail(diag, "internal error: cannot write %s: no ELF writer for this host", path);
}

#endif

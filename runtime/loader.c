/* loader.c: the user-side library `kiln`: loads a compiled model (.so) with
 * dlopen and forwards the kiln.h API to the model's own runtime through the
 * entry table it exports (kiln_entry, see rt.h). */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"

/* A model stays loaded while the caller's handle or any of its contexts
 * holds it: refs counts the handle (until kiln_model_free) and each
 * context. */
struct kiln_model {
	void *dl;
	const rt_entry *e;
	const rt_entry_ext *x;          /* NULL: a model made before kiln_entry_ext */
	char *path;
	int fd;                         /* the checked file, until lib_get takes it */
	atomic_int refs;
	uint64_t file_size;
	dev_t dev;                      /* of the checked file */
	ino_t ino;
	int nload;                      /* PT_LOAD headers kept for the weights check */
	bool load_overflow;             /* more than fit in load[]: check skipped */
	Elf64_Phdr load[32];
};

/* A context remembers its model and its model's table; the runtime's own
 * context is opaque to us, so the loader wraps it.  busy is set while a
 * kiln_run is inside: a second thread's kiln_run on it is refused. */
typedef struct loaded_ctx {
	kiln_model *m;
	const rt_entry *e;
	kiln_context *c;
	atomic_flag busy;
	const char *api_err;            /* the loader's own message for the last call, or NULL */
} loaded_ctx;

static _Thread_local char load_err[512];
/* the context this thread's last kiln_run found busy (its message is not
 * in the context, which the other thread is writing) */
static _Thread_local const kiln_context *busy_ctx;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(load_err, sizeof load_err, fmt, ap);
	va_end(ap);
	for (char *p = load_err; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

/* The libraries the loader dlopen'ed through "/proc/self/fd/N" (see
 * load_checked): glibc finds a loaded library again by every name it was
 * opened under (a second load of the same file adds its name), so each
 * such descriptor N stays open, and no other file can be opened as N,
 * while the library is loaded: until the last model using it is freed.
 * One descriptor per load of the library. */
typedef struct lib_ref {
	void *dl;
	int *fd;
	int nfd;
	int users;
	struct lib_ref *next;
} lib_ref;
static pthread_mutex_t libs_lock = PTHREAD_MUTEX_INITIALIZER;
static lib_ref *libs;

/* One more user of dl, which was opened through fd (kept).  libs_lock
 * held since the dlopen, so that no descriptor is closed between a dlopen
 * and its registration.  -1: out of memory (fd not kept). */
static int lib_get(void *dl, int fd)
{
	lib_ref *r = libs;
	while (r && r->dl != dl)
		r = r->next;
	if (!r) {
		if (!(r = calloc(1, sizeof *r)))
			return -1;
		*r = (lib_ref){.dl = dl, .next = libs};
		libs = r;
	}
	int *more = realloc(r->fd, (size_t)(r->nfd + 1) * sizeof *more);
	if (!more) {
		if (!r->users) {
			libs = r->next;
			free(r);
		}
		return -1;
	}
	r->fd = more;
	r->fd[r->nfd++] = fd;
	r->users++;
	return 0;
}

/* dlclose for a user of lib_get; the last one closes the descriptors. */
static void lib_put(void *dl)
{
	pthread_mutex_lock(&libs_lock);
	dlclose(dl);
	for (lib_ref **p = &libs; *p; p = &(*p)->next)
		if ((*p)->dl == dl) {
			lib_ref *r = *p;
			if (--r->users == 0) {
				for (int i = 0; i < r->nfd; i++)
					close(r->fd[i]);
				*p = r->next;
				free(r->fd);
				free(r);
			}
			break;
		}
	pthread_mutex_unlock(&libs_lock);
}

static void model_release(kiln_model *m)
{
	if (atomic_fetch_sub(&m->refs, 1) != 1)
		return;
	lib_put(m->dl);
	free(m->path);
	free(m);
}

/* ---- checks of the file before and after dlopen ---- */

static bool past(uint64_t off, uint64_t len, uint64_t size, uint64_t *end)
{
	*end = off + len;
	return *end < off || *end > size;
}

/* Reads n bytes at off; -1 on a short read. */
static int read_at(int fd, void *dst, size_t n, uint64_t off)
{
	for (size_t k = 0; k < n;) {
		ssize_t r = pread(fd, (char *)dst + k, n - k, (off_t)(off + k));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		k += (size_t)r;
	}
	return 0;
}

#if defined(__x86_64__)
#define ELF_HOST_MACHINE EM_X86_64
#define ELF_HOST_NAME "x86-64"
#elif defined(__aarch64__)
#define ELF_HOST_MACHINE EM_AARCH64
#define ELF_HOST_NAME "aarch64"
#endif

/* Checks that the file is a regular file, a 64-bit ELF shared object
 * whose headers and loadable segments lie inside it (dlopen maps segments
 * past the end of a cut file, and the first read there is a SIGBUS).
 * Keeps the size and the PT_LOAD headers in m, and the open file in m->fd
 * (on success only).  -1 with load_err set. */
static int check_file(const char *path, kiln_model *m)
{
	/* O_NONBLOCK: a FIFO must not block the open */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	m->fd = -1;
	if (fd < 0) {
		fail("%s: cannot load: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	int rc = -1;
	Elf64_Ehdr h;
	uint64_t size = 0, end;
	if (fstat(fd, &st)) {
		fail("%s: cannot load: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		fail("%s: cannot load: not a regular file", path);
		goto out;
	}
	size = m->file_size = (uint64_t)st.st_size;
	if (size == 0) {
		fail("%s: cannot load: empty file", path);
		goto out;
	}
	size_t got = size < sizeof h ? (size_t)size : sizeof h;
	memset(&h, 0, sizeof h);
	if (read_at(fd, &h, got, 0)) {
		fail("%s: cannot load: cannot read: %s", path, strerror(errno));
		goto out;
	}
	if (memcmp(h.e_ident, ELFMAG, got < SELFMAG ? got : SELFMAG)) {
		fail("%s: cannot load: not an ELF file", path);
		goto out;
	}
	if (got < sizeof h) {
		fail("%s: truncated: ELF header ends at byte %zu, the file has %llu", path, sizeof h,
		     (unsigned long long)size);
		goto out;
	}
	if (h.e_ident[EI_CLASS] != ELFCLASS64 || h.e_ident[EI_DATA] != ELFDATA2LSB ||
	    h.e_phentsize != sizeof(Elf64_Phdr) || h.e_phnum == 0) {
		fail("%s: cannot load: not a 64-bit little-endian ELF shared object", path);
		goto out;
	}
#if defined(__x86_64__) || defined(__aarch64__)
	/* a model compiled for the other architecture (--target-triple) */
	if (h.e_machine != ELF_HOST_MACHINE) {
		fail("%s: cannot load: compiled for %s, this machine is %s", path,
		     h.e_machine == EM_X86_64 ? "x86-64" : h.e_machine == EM_AARCH64 ? "aarch64"
		     : "another architecture", ELF_HOST_NAME);
		goto out;
	}
#endif
	if (past(h.e_phoff, (uint64_t)h.e_phnum * sizeof(Elf64_Phdr), size, &end)) {
		fail("%s: truncated: program headers end at byte %llu, the file has %llu", path,
		     (unsigned long long)end, (unsigned long long)size);
		goto out;
	}
	m->nload = 0;
	for (int i = 0, k = 0; i < h.e_phnum; i++) {
		Elf64_Phdr ph;
		if (read_at(fd, &ph, sizeof ph, h.e_phoff + (uint64_t)i * sizeof ph)) {
			fail("%s: cannot load: cannot read: %s", path, strerror(errno));
			goto out;
		}
		if (ph.p_type != PT_LOAD)
			continue;
		k++;
		if (past(ph.p_offset, ph.p_filesz, size, &end)) {
			fail("%s: truncated: loadable segment %d ends at byte %llu, the file has %llu",
			     path, k, (unsigned long long)end, (unsigned long long)size);
			goto out;
		}
		if (m->nload < (int)(sizeof m->load / sizeof m->load[0]))
			m->load[m->nload++] = ph;
		else
			m->load_overflow = true;
	}
	if (h.e_shoff && past(h.e_shoff, (uint64_t)(h.e_shnum ? h.e_shnum : 1) * h.e_shentsize,
	                      size, &end)) {
		fail("%s: truncated: section headers end at byte %llu, the file has %llu", path,
		     (unsigned long long)end, (unsigned long long)size);
		goto out;
	}
	rc = 0;
	m->fd = fd;
	m->dev = st.st_dev;
	m->ino = st.st_ino;
out:
	if (rc)
		close(fd);
	return rc;
}

/* dlopen of the file check_file checked, through its descriptor.  By path,
 * dlopen would hand back a model already loaded from the same path string
 * even when the file has been replaced since (a recompiled model.so loaded
 * again in the same process would run the old code), and the path could
 * name another file by now.  lib_get keeps the descriptor open while the
 * library is loaded, so no other file's "/proc/self/fd/N" string can match
 * it; the same file under any name still shares one loaded copy (dlopen
 * compares device and inode).  Without /proc, by path. */
static void *load_checked(const kiln_model *m, const char *p)
{
	char fdpath[64];
	struct stat st;
	snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", m->fd);
	if (stat(fdpath, &st) == 0 && st.st_dev == m->dev && st.st_ino == m->ino)
		return dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
	return dlopen(p, RTLD_NOW | RTLD_LOCAL);
}

/* After dlopen: the embedded weights (desc->weights, weights_bytes) must
 * lie in the file-backed part of one loaded segment, inside the file. */
/* True if the comma-separated list has name as one of its items. */
static bool list_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

/* Whether this CPU has feature name (one of cpu_features.def; others are
 * taken as present).  KILN_CPU_MASK=a,b makes a and b count as missing:
 * a test hook for the refusal below on any machine. */
static bool cpu_has(const char *name)
{
	if (list_has(getenv("KILN_CPU_MASK"), name))
		return false;
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
#define X(f) if (!strcmp(name, f)) return __builtin_cpu_supports(f);
#include "cpu_features.def"
#undef X
#endif
	return true;
}

/* The model's code may use the features its desc lists: refuse a CPU that
 * lacks one (it would die with SIGILL in the first run), naming them. */
static int check_cpu(const char *path, const rt_model_desc *d)
{
	char missing[512] = "", item[64];
	size_t len = 0;
	for (const char *p = d->cpu_features; p && *p;) {
		size_t n = strcspn(p, ",");
		snprintf(item, sizeof item, "%.*s", (int)(n < sizeof item ? n : sizeof item - 1), p);
		if (item[0] && !cpu_has(item) && len + n + 3 < sizeof missing)
			len += (size_t)snprintf(missing + len, sizeof missing - len, "%s%s", len ? ", " : "", item);
		p += n + (p[n] == ',');
	}
	if (!len)
		return 0;
	fail("%s: compiled for a CPU with %s, which this CPU lacks (target CPU '%s'; compile with "
	     "--target-cpu=x86-64-v3, x86-64-v2 or for this machine)", path, missing,
	     d->target_cpu ? d->target_cpu : "?");
	return -1;
}

static int check_weights(const char *path, kiln_model *m)
{
	const rt_model_desc *d = m->e->desc;
	if (d->weights_file || !d->weights || d->weights_bytes == 0 || m->load_overflow)
		return 0;
	struct link_map *lm = NULL;
	if (dlinfo(m->dl, RTLD_DI_LINKMAP, &lm) || !lm) {
		fail("%s: cannot load: dlinfo failed", path);
		return -1;
	}
	uint64_t va = (uint64_t)(uintptr_t)d->weights - (uint64_t)lm->l_addr;
	for (int i = 0; i < m->nload; i++) {
		const Elf64_Phdr *ph = &m->load[i];
		if (va < ph->p_vaddr || va - ph->p_vaddr >= ph->p_memsz)
			continue;
		uint64_t off = ph->p_offset + (va - ph->p_vaddr), end = off + d->weights_bytes;
		uint64_t seg_end = ph->p_offset + ph->p_filesz;
		if (end < off || end > m->file_size || end > seg_end) {
			fail("%s: truncated: weights end at byte %llu, the file has %llu", path,
			     (unsigned long long)end,
			     (unsigned long long)(end > m->file_size ? m->file_size : seg_end));
			return -1;
		}
		return 0;
	}
	fail("%s: corrupt: the weights (%llu bytes) are not in a loaded segment of the file", path,
	     (unsigned long long)d->weights_bytes);
	return -1;
}

const char *kiln_load_error(void)
{
	return load_err;
}

kiln_model *kiln_model_load(const char *path)
{
	load_err[0] = 0;
	if (!path || !path[0]) {
		/* "" would be "./", a directory: say what is wrong, not errno's */
		fail("kiln_model_load: %s", path ? "empty path" : "path is NULL");
		return NULL;
	}
	/* dlopen searches the library path for a name without '/': a model
	 * file is always meant relative to the current directory. */
	char buf[4096];
	const char *p = path;
	if (!strchr(path, '/')) {
		if (snprintf(buf, sizeof buf, "./%s", path) >= (int)sizeof buf) {
			fail("%s: path too long", path);
			return NULL;
		}
		p = buf;
	}
	kiln_model *m = calloc(1, sizeof *m);
	if (!m || !(m->path = strdup(p))) {
		free(m);
		fail("%s: out of memory", path);
		return NULL;
	}
	if (check_file(path, m)) {
		free(m->path);
		free(m);
		return NULL;
	}
	pthread_mutex_lock(&libs_lock);
	void *dl = load_checked(m, p);
	if (dl && lib_get(dl, m->fd)) {
		dlclose(dl);
		dl = NULL;
		fail("%s: out of memory", path);
	} else if (!dl) {
		const char *why = dlerror();
		/* dlerror names the file as "/proc/self/fd/N: ...": path says it */
		if (why && !strncmp(why, "/proc/self/fd/", 14) && strstr(why, ": "))
			why = strstr(why, ": ") + 2;
		fail("%s: cannot load: %s", path, why ? why : "unknown error");
	}
	pthread_mutex_unlock(&libs_lock);
	if (!dl)
		close(m->fd);
	m->fd = -1;                     /* lib_get's now */
	const rt_entry *(*entry)(void) = NULL;
	const rt_entry *e = NULL;
	if (!dl) {
		/* load_err says why */
	} else if (!(entry = (const rt_entry *(*)(void))dlsym(dl, "kiln_entry")))
		fail("%s: not a kiln model (no kiln_entry)", path);
	else if (!(e = entry()) || e->abi_version != RT_ABI_VERSION || !e->desc ||
	         e->desc->abi_version != RT_ABI_VERSION)
		fail("%s: model ABI version %d, this loader expects %d", path,
		     e ? (int)e->abi_version : -1, RT_ABI_VERSION);
	else {
		m->dl = dl;
		m->e = e;
		const rt_entry_ext *(*ext)(void) =
			(const rt_entry_ext *(*)(void))dlsym(dl, "kiln_entry_ext");
		m->x = ext ? ext() : NULL;
		if (check_cpu(path, e->desc) == 0 && check_weights(path, m) == 0) {
			atomic_init(&m->refs, 1);
			return m;
		}
	}
	if (dl)
		lib_put(dl);
	free(m->path);
	free(m);
	return NULL;
}

void kiln_model_free(kiln_model *m)
{
	if (m)
		model_release(m);
}

int kiln_model_num_inputs(const kiln_model *m)
{
	return m ? m->e->desc->nin : 0;
}

int kiln_model_num_outputs(const kiln_model *m)
{
	return m ? m->e->desc->nout : 0;
}

const kiln_io_info *kiln_model_input(const kiln_model *m, int i)
{
	if (!m || i < 0 || i >= m->e->desc->nin)
		return NULL;
	return &m->e->desc->inputs[i];
}

const kiln_io_info *kiln_model_output(const kiln_model *m, int i)
{
	if (!m || i < 0 || i >= m->e->desc->nout)
		return NULL;
	return &m->e->desc->outputs[i];
}

kiln_context *kiln_context_create(kiln_model *m, int num_threads)
{
	load_err[0] = 0;
	if (!m) {
		fail("kiln_context_create: model is NULL");
		return NULL;
	}
	loaded_ctx *lc = calloc(1, sizeof *lc);
	if (!lc) {
		fail("kiln_context_create: out of memory");
		return NULL;
	}
	lc->m = m;
	lc->e = m->e;
	atomic_flag_clear(&lc->busy);
	lc->c = m->e->context_create(m->e->desc, m->path, num_threads);
	if (!lc->c) {
		const char *why = m->e->create_error ? m->e->create_error() : "";
		fail("%s: cannot create context: %s", m->path, why && *why ? why : "unknown error");
		free(lc);
		return NULL;
	}
	atomic_fetch_add(&m->refs, 1);
	return (kiln_context *)lc;
}

void kiln_context_free(kiln_context *c)
{
	loaded_ctx *lc = (loaded_ctx *)c;
	if (!lc)
		return;
	if (busy_ctx == c)
		busy_ctx = NULL;
	lc->e->context_free(lc->c);
	model_release(lc->m);
	free(lc);
}

int kiln_run(kiln_context *c, const kiln_tensor *inputs, int ninputs,
             kiln_tensor *outputs, int noutputs)
{
	loaded_ctx *lc = (loaded_ctx *)c;
	if (!lc)
		return -1;
	if (atomic_flag_test_and_set_explicit(&lc->busy, memory_order_acquire)) {
		busy_ctx = c;
		return KILN_BUSY;
	}
	busy_ctx = NULL;
	lc->api_err = NULL;
	int rc = lc->e->run(lc->c, inputs, ninputs, outputs, noutputs) ? -1 : 0;
	atomic_flag_clear_explicit(&lc->busy, memory_order_release);
	return rc;
}

const char *kiln_last_error(const kiln_context *c)
{
	const loaded_ctx *lc = (const loaded_ctx *)c;
	if (lc && busy_ctx == c)
		return "context is in use by another thread (one kiln_run at a time per context)";
	if (lc && lc->api_err)
		return lc->api_err;
	return lc ? lc->e->last_error(lc->c) : "no context";
}

int64_t kiln_model_input_index_bound(const kiln_model *m, int i)
{
	if (!m || i < 0 || i >= m->e->desc->nin || !m->e->desc->in_index_bound)
		return 0;
	return m->e->desc->in_index_bound[i];
}

int kiln_model_get_info(const kiln_model *m, kiln_model_info *info)
{
	if (!m || !info)
		return -1;
	const rt_model_desc *d = m->e->desc;
	info->name = d->name;
	info->kiln_version = d->kiln_version;
	info->abi_version = d->abi_version;
	info->target_triple = d->target_triple;
	info->target_cpu = d->target_cpu;
	info->cpu_features = d->cpu_features;
	info->fpmath = d->fpmath ? "bf16" : "fp32";
	info->weights_file = d->weights_file;
	info->weights_bytes = d->weights_bytes;
	info->weights_hash = d->weights_hash;
	return 0;
}

size_t kiln_context_arena_bytes(const kiln_context *c)
{
	const loaded_ctx *lc = (const loaded_ctx *)c;
	return lc ? lc->e->arena_bytes(lc->c) : 0;
}

/* ---- the profiler (rt_entry_ext) ---- */

/* Whether the model's runtime has the field f of rt_entry_ext. */
#define HAS_EXT(m, f) ((m)->x && (m)->x->size >= offsetof(rt_entry_ext, f) + sizeof((m)->x->f) && \
                       (m)->x->f)

/* Claims the context for a profile call as kiln_run does: 0, or KILN_BUSY
 * / -1 (no context, or a model without the profiler: message set). */
static int prof_enter(loaded_ctx *lc, bool supported)
{
	if (!lc)
		return -1;
	if (atomic_flag_test_and_set_explicit(&lc->busy, memory_order_acquire)) {
		busy_ctx = (kiln_context *)lc;
		return KILN_BUSY;
	}
	busy_ctx = NULL;
	lc->api_err = NULL;
	if (!supported) {
		lc->api_err = "this model was compiled by a kiln without the profiler "
		              "(compiled without profiling support): compile it again to profile it";
		atomic_flag_clear_explicit(&lc->busy, memory_order_release);
		return -1;
	}
	return 0;
}

static int prof_leave(loaded_ctx *lc, int rc)
{
	atomic_flag_clear_explicit(&lc->busy, memory_order_release);
	return rc ? -1 : 0;
}

int kiln_context_profile_start(kiln_context *c)
{
	loaded_ctx *lc = (loaded_ctx *)c;
	int rc = prof_enter(lc, lc && HAS_EXT(lc->m, profile_start));
	return rc ? rc : prof_leave(lc, lc->m->x->profile_start(lc->c));
}

int kiln_context_profile_stop(kiln_context *c)
{
	loaded_ctx *lc = (loaded_ctx *)c;
	int rc = prof_enter(lc, lc && HAS_EXT(lc->m, profile_stop));
	return rc ? rc : prof_leave(lc, lc->m->x->profile_stop(lc->c));
}

int kiln_context_profile_write(kiln_context *c, const char *path)
{
	loaded_ctx *lc = (loaded_ctx *)c;
	int rc = prof_enter(lc, lc && HAS_EXT(lc->m, profile_write));
	return rc ? rc : prof_leave(lc, lc->m->x->profile_write(lc->c, path));
}

/* Reading needs no claim: like kiln_last_error, it must not race with a
 * run (kiln.h). */
size_t kiln_context_profile_count(const kiln_context *c)
{
	const loaded_ctx *lc = (const loaded_ctx *)c;
	return lc && HAS_EXT(lc->m, profile_count) ? lc->m->x->profile_count(lc->c) : 0;
}

int kiln_context_profile_event(const kiln_context *c, size_t i, kiln_profile_event *ev)
{
	const loaded_ctx *lc = (const loaded_ctx *)c;
	if (!lc || !ev || !HAS_EXT(lc->m, profile_event))
		return -1;
	memset(ev, 0, sizeof *ev);
	return lc->m->x->profile_event(lc->c, i, ev, sizeof *ev) ? -1 : 0;
}

/* weights.c: where a context reads the model's weights from.
 *
 * The weights are copied once per loaded model into anonymous memory
 * (read-only after the copy) that every context of the model shares.
 * Reading them straight from the file mapping (the .so's .lrodata, or
 * OUT.weights mapped) was measured slower and far less steady: BERT-base
 * at 2 threads, p90 155 ms against 92 ms from anonymous memory, on this
 * project's VM.  The copy
 * does not double the resident memory: embedded weights are copied 1 MB
 * at a time and each copied range of the .so's mapping is dropped at once
 * (MADV_DONTNEED; it would fault back in from the file if ever read); the
 * side file is read with pread.  If the anonymous mapping cannot be made,
 * the file is used in place.
 *
 * Only the hot part is copied: tables that runs only look rows up in
 * (embeddings, desc->weights_hot_bytes on) stay in the file (the .so's
 * mapping, or a mapping of the side file's tail), so only the rows a run
 * reads become resident -- BERT-base's word embeddings are 94 MB.
 *
 * The runtime is linked into each model's .so, so the static state below
 * is per model. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_internal.h"

#define CHUNK ((size_t)1 << 20)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char *mem;             /* the copy of the hot part, or NULL */
	size_t bytes;          /* its mapped bytes */
	void *cold;            /* the side file's cold part, mapped, or NULL */
	size_t cold_bytes;
	int refs;
} shared;

static size_t round_up(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

/* Copy the embedded blob, dropping each copied part of the file mapping. */
static void copy_embedded(char *dst, const char *src, size_t n)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	for (size_t off = 0; off < n; off += CHUNK) {
		size_t len = n - off < CHUNK ? n - off : CHUNK;
		memcpy(dst + off, src + off, len);
		/* whole pages inside [src + off, src + off + len) only */
		uintptr_t b = ((uintptr_t)(src + off) + page - 1) / page * page;
		uintptr_t e = (uintptr_t)(src + off + len) / page * page;
		if (e > b)
			madvise((void *)b, e - b, MADV_DONTNEED);
	}
}

/* n bytes of the file from byte `at` into dst */
static int read_all_at(int fd, char *dst, size_t n, size_t at)
{
	for (size_t off = 0; off < n;) {
		ssize_t r = pread(fd, dst + off, n - off > CHUNK ? CHUNK : n - off, (off_t)(at + off));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

static int read_all(int fd, char *dst, size_t n)
{
	return read_all_at(fd, dst, n, 0);
}

/* The side file's path: beside the .so. */
static int side_path(const rt_model_desc *d, const char *so_path, char *path, size_t len)
{
	const char *slash = so_path ? strrchr(so_path, '/') : NULL;
	int dirlen = slash ? (int)(slash - so_path) : 1;
	const char *dir = slash ? so_path : ".";
	return snprintf(path, len, "%.*s/%s", dirlen, dir, d->weights_file) >= (int)len ? -1 : 0;
}

/* The side file, opened and checked; -1 with err set. */
static int open_side(const rt_model_desc *d, const char *path, char *err, size_t errlen)
{
	/* O_NONBLOCK: a FIFO must not block the open */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open weights file '%s'", path);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "weights file '%s' is not a regular file", path);
		close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size != d->weights_bytes) {
		snprintf(err, errlen, "weights file '%s': %lld bytes, expected %llu", path,
		         (long long)st.st_size, (unsigned long long)d->weights_bytes);
		close(fd);
		return -1;
	}
	return fd;
}

/* An external weights file must be the one the model was compiled with:
 * its content hash against desc->weights_hash (-1 with err set if not).
 * Runs after load(): the hot bytes are hashed where load() put them (no
 * second read), the cold tail read from the file without mapping it (its
 * pages stay out of the process). */
static int check_hash(const rt_model_desc *d, int fd, const char *path, char *err, size_t errlen)
{
	size_t n = (size_t)d->weights_bytes, from = 0;
	rt_hash h;
	rt_hash_init(&h);
	if (shared.mem) {     /* the hot part: a multiple of 65536 bytes when a tail follows */
		from = (size_t)d->weights_hot_bytes;
		rt_hash_add(&h, shared.mem, from);
	}
	char *buf = from < n ? malloc(CHUNK) : NULL;
	if (from < n && !buf) {
		snprintf(err, errlen, "out of memory checking weights file '%s'", path);
		return -1;
	}
	int rc = 0;
	for (size_t off = from; off < n && !rc; off += CHUNK) {
		size_t len = n - off < CHUNK ? n - off : CHUNK;
		if (read_all_at(fd, buf, len, off)) {
			snprintf(err, errlen, "cannot read weights file '%s'", path);
			rc = -1;
		} else
			rt_hash_add(&h, buf, len);
	}
	free(buf);
	if (!rc && rt_hash_end(&h) != d->weights_hash) {
		snprintf(err, errlen, "weights file '%s' does not belong to this model (content hash "
		         "%016llx, compiled with %016llx): another model's weights?", path,
		         (unsigned long long)rt_hash_end(&h), (unsigned long long)d->weights_hash);
		rc = -1;
	}
	return rc;
}

/* Fill the shared state for d (lock held); -1 with err set. */
static int load(const rt_model_desc *d, int fd, const char *path, char *err, size_t errlen)
{
	size_t n = (size_t)d->weights_bytes, hot = (size_t)d->weights_hot_bytes;
	if (hot > n || (hot < n && hot % RT_WEIGHTS_COLD_ALIGN)) {
		snprintf(err, errlen, "model '%s': corrupt weights layout", d->name ? d->name : "?");
		return -1;
	}
	if (fd >= 0 && hot < n) {
		shared.cold = mmap(NULL, n - hot, PROT_READ, MAP_PRIVATE, fd, (off_t)hot);
		if (shared.cold == MAP_FAILED) {
			shared.cold = NULL;
			snprintf(err, errlen, "cannot map weights file '%s'", path);
			return -1;
		}
		shared.cold_bytes = n - hot;
	}
	if (hot == 0)
		return 0;
	size_t bytes = round_up(hot, (size_t)sysconf(_SC_PAGESIZE));
	char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED && fd < 0)
		return 0;            /* no memory for a copy: read the .so's in place */
	/* 2 MB pages where the kernel gives them (THP in "madvise" mode): the
	 * GEMMs stream every weight once per run, one TLB miss per 4 KB page
	 * otherwise (gemm_bench GEMM_BENCH_HUGE=1: +3-5 points of the FMA peak
	 * on LXMERT's 20- and 36-row products); a hint, failure is harmless */
	if (m != MAP_FAILED)
		madvise(m, bytes, MADV_HUGEPAGE);
	if (m == MAP_FAILED) {
		m = mmap(NULL, hot, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			snprintf(err, errlen, "cannot map weights file '%s'", path);
			return -1;
		}
		bytes = hot;
	} else if (fd < 0) {
		copy_embedded(m, d->weights, hot);
		mprotect(m, bytes, PROT_READ);
	} else if (read_all(fd, m, hot)) {
		snprintf(err, errlen, "cannot read weights file '%s'", path);
		munmap(m, bytes);
		return -1;
	} else {
		mprotect(m, bytes, PROT_READ);
	}
	shared.mem = m;
	shared.bytes = bytes;
	return 0;
}

static void unload(void)
{
	if (shared.mem)
		munmap(shared.mem, shared.bytes);
	if (shared.cold)
		munmap(shared.cold, shared.cold_bytes);
	memset(&shared, 0, sizeof shared);
}

int rt_weights_acquire(kiln_context *c, const char *so_path, char *err, size_t errlen)
{
	const rt_model_desc *d = c->d;
	char path[4096];
	int fd = -1;
	if (d->weights_file) {
		if (side_path(d, so_path, path, sizeof path)) {
			snprintf(err, errlen, "weights file path too long: %s", d->weights_file);
			return -1;
		}
		fd = open_side(d, path, err, errlen);
		if (fd < 0)
			return -1;
	}
	int rc = 0;
	pthread_mutex_lock(&lock);
	if (shared.refs == 0)
		rc = load(d, fd, path, err, errlen) || (fd >= 0 && check_hash(d, fd, path, err, errlen))
		     ? -1 : 0;
	if (rc == 0) {
		shared.refs++;
		c->weights = shared.mem ? shared.mem : d->weights;
		c->weights_cold = shared.cold ? (const char *)shared.cold
		                  : d->weights ? d->weights + d->weights_hot_bytes : NULL;
		c->holds_weights = true;
	} else {
		unload();
	}
	pthread_mutex_unlock(&lock);
	if (fd >= 0)
		close(fd);
	return rc;
}

void rt_weights_release(kiln_context *c)
{
	if (!c->holds_weights)
		return;
	pthread_mutex_lock(&lock);
	if (--shared.refs == 0)
		unload();
	pthread_mutex_unlock(&lock);
	c->holds_weights = false;
	c->weights = c->weights_cold = NULL;
}

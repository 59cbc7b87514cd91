/* loader.c: the user-side library `kiln`: loads a compiled model (.so) with
 * dlopen and forwards the kiln.h API to the model's own runtime through the
 * entry table it exports (kiln_entry, see rt.h). */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

struct kiln_model {
	void *dl;
	const rt_entry *e;
	char *path;
};

/* A context remembers its model's table; the runtime's own context is
 * opaque to us, so the loader wraps it. */
typedef struct loaded_ctx {
	const rt_entry *e;
	kiln_context *c;
} loaded_ctx;

static _Thread_local char load_err[512];

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

const char *kiln_load_error(void)
{
	return load_err;
}

kiln_model *kiln_model_load(const char *path)
{
	load_err[0] = 0;
	if (!path) {
		fail("kiln_model_load: path is NULL");
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
	void *dl = dlopen(p, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *why = dlerror();
		fail("%s: cannot load: %s", path, why ? why : "unknown error");
		return NULL;
	}
	const rt_entry *(*entry)(void) = (const rt_entry *(*)(void))dlsym(dl, "kiln_entry");
	if (!entry) {
		fail("%s: not a kiln model (no kiln_entry)", path);
		dlclose(dl);
		return NULL;
	}
	const rt_entry *e = entry();
	if (!e || e->abi_version != RT_ABI_VERSION || !e->desc ||
	    e->desc->abi_version != RT_ABI_VERSION) {
		fail("%s: model ABI version %d, this loader expects %d", path,
		     e ? (int)e->abi_version : -1, RT_ABI_VERSION);
		dlclose(dl);
		return NULL;
	}
	kiln_model *m = calloc(1, sizeof *m);
	if (!m || !(m->path = strdup(p))) {
		free(m);
		fail("%s: out of memory", path);
		dlclose(dl);
		return NULL;
	}
	m->dl = dl;
	m->e = e;
	return m;
}

void kiln_model_free(kiln_model *m)
{
	if (!m)
		return;
	dlclose(m->dl);
	free(m->path);
	free(m);
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
	lc->e = m->e;
	lc->c = m->e->context_create(m->e->desc, m->path, num_threads);
	if (!lc->c) {
		const char *why = m->e->create_error ? m->e->create_error() : "";
		fail("%s: cannot create context: %s", m->path, why && *why ? why : "unknown error");
		free(lc);
		return NULL;
	}
	return (kiln_context *)lc;
}

void kiln_context_free(kiln_context *c)
{
	loaded_ctx *lc = (loaded_ctx *)c;
	if (!lc)
		return;
	lc->e->context_free(lc->c);
	free(lc);
}

int kiln_run(kiln_context *c, const kiln_tensor *inputs, int ninputs,
             kiln_tensor *outputs, int noutputs)
{
	loaded_ctx *lc = (loaded_ctx *)c;
	if (!lc)
		return -1;
	return lc->e->run(lc->c, inputs, ninputs, outputs, noutputs) ? -1 : 0;
}

const char *kiln_last_error(const kiln_context *c)
{
	const loaded_ctx *lc = (const loaded_ctx *)c;
	return lc ? lc->e->last_error(lc->c) : "no context";
}

size_t kiln_context_arena_bytes(const kiln_context *c)
{
	const loaded_ctx *lc = (const loaded_ctx *)c;
	return lc ? lc->e->arena_bytes(lc->c) : 0;
}

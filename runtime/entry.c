/* entry.c: the one exported symbol of a compiled model, kiln_entry, whose
 * table reaches the context functions of rt_core.c for the descriptor the
 * generated code defines (kiln__desc).  Kept apart from rt_core.c so that
 * code using only kernels links without a descriptor. */
#include "rt_internal.h"

extern const rt_model_desc kiln__desc;

static const rt_entry entry = {
	.abi_version = RT_ABI_VERSION,
	.desc = &kiln__desc,
	.context_create = rt_context_create,
	.context_free = rt_context_free,
	.run = rt_context_run,
	.last_error = rt_context_error,
	.arena_bytes = rt_context_arena_bytes,
	.create_error = rt_create_error,
};

__attribute__((visibility("default"))) const rt_entry *kiln_entry(void)
{
	return &entry;
}

/* Entry points added since ABI version 3 (rt.h): found by name, so that
 * the loader works with models made before them. */
static const rt_entry_ext entry_ext = {
	.size = sizeof(rt_entry_ext),
	.profile_start = rt_profile_start,
	.profile_stop = rt_profile_stop,
	.profile_count = rt_profile_count,
	.profile_event = rt_profile_event,
	.profile_write = rt_profile_write,
};

__attribute__((visibility("default"))) const rt_entry_ext *kiln_entry_ext(void)
{
	return &entry_ext;
}

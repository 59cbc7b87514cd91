/* link.c: LLVM module -> optimized -> .ll/.s/.o, or a .so linked with the
 * runtime.
 *
 * Targets: this machine, or (--target-triple) aarch64-linux-gnu from an
 * x86-64 host (and x86_64-linux-gnu from aarch64): the .so is linked with
 * that triple's GNU cross compiler (Debian's aarch64-linux-gnu-gcc) and
 * the runtime cross-built for it (BUILD/aarch64-linux-gnu/libkiln_rt.a,
 * installed as LIBDIR/kiln/aarch64-linux-gnu/libkiln_rt.a).  Other triples
 * take --emit=obj|asm|llvm.
 *
 * The .so is put together in a private temp dir: model.o (the module),
 * weights.o (the embedded weights, written directly as an ELF object by
 * elf_weights.c, or on other hosts assembled with `.incbin` of the blob:
 * either is much cheaper than an LLVM constant for a 440 MB model), then
 *   cc [-fuse-ld=gold] -shared -o OUT model.o weights.o libkiln_rt.a
 *      -lm -lpthread
 * run with posix_spawnp (no shell), stderr captured for the diag.  Gold is
 * tried first (much faster on big weights), the default linker if it fails. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "be.h"

extern char **environ;

typedef struct TmpDir {
	char path[512];
	char files[8][600];
	int nfiles;
} TmpDir;

static int tmp_open(TmpDir *t, Diag *diag)
{
	const char *base = getenv("TMPDIR");
	if (!base || !*base || strpbrk(base, "\"\\\n") || strlen(base) > 400)
		base = "/tmp";
	snprintf(t->path, sizeof t->path, "%s/kiln-XXXXXX", base);
	if (!mkdtemp(t->path))
		return diag_fail(diag, "cannot create a temp dir in %s: %s", base, strerror(errno));
	return 0;
}

static const char *tmp_file(TmpDir *t, const char *name)
{
	/* path < 512 and names are short: fits in 600 */
	char *p = t->files[t->nfiles++];
	size_t n = strlen(t->path);
	memcpy(p, t->path, n);
	p[n] = '/';
	memcpy(p + n + 1, name, strlen(name) + 1);
	return p;
}

/* Removes the temp dir with everything in it, also files a tool left
 * there that were never registered with tmp_file. */
static void tmp_close(TmpDir *t)
{
	for (int i = 0; i < t->nfiles; i++)
		unlink(t->files[i]);
	DIR *d = opendir(t->path);
	if (d) {
		char p[1200];
		for (struct dirent *e; (e = readdir(d));) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(p, sizeof p, "%s/%s", t->path, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(t->path);
}

/* The .so and OUT.weights are written beside their final name and renamed
 * over it once complete: a process that has the old model loaded (its cold
 * weights are mapped from OUT.weights) never sees a truncated or rewritten
 * file, two kiln compile to the same -o at once each rename a whole file
 * (one used to find the other's half-written output, report "the linker
 * left no output" and delete it, leaving none), and a failed compile leaves
 * the old output.  An output that is a symlink is replaced where it points. */
typedef struct Staged {
	char dst[BE_PATH_MAX];        /* the final path (a symlink's target) */
	char tmp[BE_PATH_MAX + 32];   /* dst.kiln-tmp-PID */
} Staged;

static int stage(Staged *s, const char *final, Diag *diag)
{
	struct stat st;
	char *real = NULL;
	if (!lstat(final, &st) && S_ISLNK(st.st_mode))
		real = realpath(final, NULL);
	int rc = be_path(diag, s->dst, sizeof s->dst, "%s", real ? real : final);
	free(real);
	return rc ? rc : be_path(diag, s->tmp, sizeof s->tmp, "%s.kiln-tmp-%ld", s->dst, (long)getpid());
}

static int stage_commit(const Staged *s, Diag *diag)
{
	if (rename(s->tmp, s->dst) == 0)
		return 0;
	int e = errno;
	unlink(s->tmp);
	return diag_fail(diag, "%s: cannot write: %s", s->dst, strerror(e));
}

static int write_file(const char *path, const void *data, size_t n, Diag *diag)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return diag_fail(diag, "cannot write %s: %s", path, strerror(errno));
	size_t w = n ? fwrite(data, 1, n, f) : 0;
	int e = w != n ? (errno ? errno : EIO) : 0;
	if (fclose(f) != 0 && !e)
		e = errno ? errno : EIO;
	if (e) {
		unlink(path);
		return diag_fail(diag, "cannot write %s: %s", path, strerror(e));
	}
	return 0;
}

int be_path(Diag *diag, char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < cap)
		return 0;
	if (!diag)
		return -1;
	/* the message shows the path's start and end, not all of it */
	char head[41], tail[41] = "";
	snprintf(head, sizeof head, "%s", buf);
	char *full = n > 0 ? malloc((size_t)n + 1) : NULL;
	if (full) {
		va_start(ap, fmt);
		vsnprintf(full, (size_t)n + 1, fmt, ap);
		va_end(ap);
		snprintf(tail, sizeof tail, "%s", full + n - 40);
		free(full);
	}
	buf[0] = 0;
	return diag_fail(diag, "%s...%s: path too long (%d bytes, limit %zu)", head, tail, n, cap - 1);
}

/* Output of a tool kept for the message (its first bytes), and the most it
 * may write before it is stopped: a linker that fails to write its output
 * (-o /dev/full) has been seen to repeat its complaint without end. */
#define CMD_MSG_KEEP 700
#define CMD_OUTPUT_MAX ((size_t)4 << 20)

/* Runs argv with stdout and stderr into a pipe drained here (bounded);
 * on failure the diag holds the start of that output (one line). */
static int run_cmd(char *const *argv, Diag *diag)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC))
		return diag_fail(diag, "cannot run %s: pipe: %s", argv[0], strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		return diag_fail(diag, "cannot run %s: %s", argv[0], strerror(rc));
	}
	char msg[CMD_MSG_KEEP + 1], chunk[4096];
	size_t kept = 0, total = 0;
	bool killed = false;
	for (;;) {
		ssize_t r = read(pfd[0], chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		size_t take = (size_t)r < CMD_MSG_KEEP - kept ? (size_t)r : CMD_MSG_KEEP - kept;
		memcpy(msg + kept, chunk, take);
		kept += take;
		total += (size_t)r;
		if (total > CMD_OUTPUT_MAX && !killed) {
			kill(pid, SIGKILL);
			killed = true;
		}
	}
	close(pfd[0]);
	msg[kept] = 0;
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return diag_fail(diag, "waiting for %s: %s", argv[0], strerror(errno));
	if (!killed && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (killed)
		return diag_fail(diag, "%s stopped after writing more than %zu MB of messages: %.200s",
		                 argv[0], CMD_OUTPUT_MAX >> 20, msg);
	return diag_fail(diag, "%s failed: %s", argv[0], msg[0] ? msg : "(no message)");
}

static bool same_arch(const char *triple);

/* The C compiler that links for the target: cc, or GNU-gcc for a cross
 * target GNU (be_cross_gnu). */
static const char *target_cc(const Be *be, char *buf, size_t n)
{
	const char *gnu = be_cross_gnu(be->opt->target_triple);
	if (!gnu)
		return "cc";
	snprintf(buf, n, "%s-gcc", gnu);
	return buf;
}

/* weights.o: written directly (elf_weights.c) on ELF64 x86_64/aarch64 hosts
 * for x86_64 or aarch64, else assembled from weights.bin with `.incbin`. */
static int assemble_weights(Be *be, TmpDir *t, const char **wobj)
{
	*wobj = tmp_file(t, "weights.o");
	char *triple = be_triple(be->opt->target_triple);
	bool a64 = !strncmp(triple, "aarch64-", 8), x64 = !strncmp(triple, "x86_64-", 7);
	LLVMDisposeMessage(triple);
	if (be_weights_obj_native() && (a64 || x64))
		return be_write_weights_obj(*wobj, be->blob, be->blob_bytes, a64, be->diag);
	const char *bin = tmp_file(t, "weights.bin");
	const char *src = tmp_file(t, "weights.S");
	if (write_file(bin, be->blob, be->blob_bytes, be->diag))
		return -1;
	/* A large section (flag l): the linker places it after .data and .bss,
	 * so weights over 2 GB leave the 32-bit relocations of code and small
	 * data in reach.  Generated code reaches the weights through the
	 * descriptor's 64-bit pointer. */
	char text[1200];
	snprintf(text, sizeof text,
	         "\t.section .lrodata.kiln_weights,\"al\",@progbits\n"
	         "\t.balign 64\n\t.globl kiln__weights\n\t.hidden kiln__weights\n"
	         "\t.type kiln__weights,@object\n"
	         "kiln__weights:\n\t.incbin \"%s\"\n\t.size kiln__weights, .-kiln__weights\n"
	         "\t.section .note.GNU-stack,\"\",@progbits\n", bin);
	if (write_file(src, text, strlen(text), be->diag))
		return -1;
	char ccbuf[128];
	char *argv[] = {(char *)target_cc(be, ccbuf, sizeof ccbuf), "-c", (char *)src, "-o",
	                (char *)*wobj, NULL};
	return run_cmd(argv, be->diag);
}

/* Whether the program name is an executable file in $PATH. */
static bool in_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");
		snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n ? p : ".", name);
		if (!access(buf, X_OK))
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

const char *be_cross_gnu(const char *target_triple)
{
	if (!target_triple)
		return NULL;
	char *t = LLVMNormalizeTargetTriple(target_triple);
	/* arch-vendor-linux-gnu (vendor any): the Debian cross toolchains */
	const char *gnu = NULL;
	if (same_arch(t)) {
		LLVMDisposeMessage(t);
		return NULL;
	}
	size_t n = strlen(t);
	bool linux_gnu = strstr(t, "-linux-gnu") && n >= 4 && !strcmp(t + n - 4, "-gnu");
	if (linux_gnu && !strncmp(t, "aarch64-", 8))
		gnu = "aarch64-linux-gnu";
	else if (linux_gnu && !strncmp(t, "x86_64-", 7))
		gnu = "x86_64-linux-gnu";
	LLVMDisposeMessage(t);
	return gnu;
}

int be_cross_path(const char *gnu, const char *file, char *buf, size_t n, Diag *diag)
{
	const char *dir = getenv("KILN_CROSS_DIR");
	if (dir && dir[0]) {
		snprintf(buf, n, "%s/%s/%s", dir, gnu, file);
		if (!access(buf, R_OK))
			return 0;
		return diag_fail(diag, "%s (KILN_CROSS_DIR): %s", buf, strerror(errno));
	}
	char exe[4096];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	char *slash = len > 0 ? (exe[len] = 0, strrchr(exe, '/')) : NULL;
	if (slash) {
		*slash = 0;
		snprintf(buf, n, "%s/%s/%s/%s", exe, KILN_CROSS_INSTALLED, gnu, file);
		if (!access(buf, R_OK))
			return 0;
	}
	snprintf(buf, n, "%s/%s/%s", KILN_CROSS_BUILD_DIR, gnu, file);
	if (!access(buf, R_OK))
		return 0;
	return diag_fail(diag, "cannot find %s for %s beside this kiln (lib/kiln/%s/) or in its build "
	                 "tree: build kiln with %s-gcc installed (Debian: gcc-%s), or set KILN_CROSS_DIR",
	                 file, gnu, gnu, gnu, gnu);
}

/* The runtime library models link: --runtime-lib, else $KILN_RUNTIME_LIB,
 * else the installed one relative to this executable
 * (BINDIR/../LIBDIR/kiln/libkiln_rt.a), else the build tree's: an
 * installed kiln works from any folder with the build tree gone.  NULL and
 * diag if none is readable. */
static const char *runtime_lib(const Be *be, char *buf, size_t n, Diag *diag)
{
	const char *gnu = be_cross_gnu(be->opt->target_triple);
	if (gnu && !be->opt->runtime_lib)   /* $KILN_RUNTIME_LIB is this machine's */
		return be_cross_path(gnu, "libkiln_rt.a", buf, n, diag) ? NULL : buf;
	const char *given = be->opt->runtime_lib ? be->opt->runtime_lib : getenv("KILN_RUNTIME_LIB");
	if (given && given[0]) {
		if (access(given, R_OK)) {
			diag_fail(diag, "runtime library '%s' (%s): %s", given,
			          be->opt->runtime_lib ? "--runtime-lib" : "KILN_RUNTIME_LIB", strerror(errno));
			return NULL;
		}
		return given;
	}
	char exe[4096];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (len > 0) {
		exe[len] = 0;
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			snprintf(buf, n, "%s/%s", exe, KILN_RT_INSTALLED);
			if (!access(buf, R_OK))
				return buf;
		}
	}
	if (!access(KILN_RT_LIB, R_OK))
		return KILN_RT_LIB;
	diag_fail(diag, "cannot find the kiln runtime library (libkiln_rt.a) beside this kiln or in its "
	          "build tree: set KILN_RUNTIME_LIB or --runtime-lib");
	return NULL;
}

/* cc -shared ... with the linker named by fuse ("-fuse-ld=gold") or cc's
 * default one (fuse NULL). */
static int run_link(Be *be, const char *fuse, const char *rt, const char *out, const char *obj,
                    const char *wobj, Diag *diag)
{
	char *argv[24], ccbuf[128];
	int n = 0;
	bool cross = be_cross_gnu(be->opt->target_triple) != NULL;
	argv[n++] = (char *)target_cc(be, ccbuf, sizeof ccbuf);
	if (fuse)
		argv[n++] = (char *)fuse;
	argv[n++] = "-shared";
	argv[n++] = "-o";
	argv[n++] = (char *)out;
	argv[n++] = (char *)obj;
	if (wobj)
		argv[n++] = (char *)wobj;
	argv[n++] = "-Wl,-u,kiln_entry";   /* pull the entry point out of the archive */
	argv[n++] = (char *)rt;
	argv[n++] = "-lm";
	argv[n++] = "-lpthread";
	argv[n++] = "-Wl,--no-undefined";
	argv[n++] = "-Wl,-z,noexecstack";
	argv[n++] = "-Wl,--strip-debug";   /* the runtime's debug info: ~2 MB per model */
#ifdef KILN_SANITIZE_LINK
	/* the runtime library is instrumented: pull in the sanitizer runtimes
	 * (not the cross-built one) */
	if (!cross)
		argv[n++] = "-fsanitize=address,undefined";
#else
	(void)cross;
#endif
	argv[n] = NULL;
	return run_cmd(argv, diag);
}

/* Links with gold when it works: it maps its inputs and writes the output
 * once, where ld.bfd copies the weights through buffers (3.4 s instead of
 * 11.5 s for 800 MB).  Gold also places the large (SHF_X86_64_LARGE)
 * weights section after .data and .bss.  If the gold link fails the default
 * linker runs, and its message is the one reported; if it succeeds, gold
 * is the problem (not installed, or a gold bug) and is not tried again. */
static int link_objs(Be *be, const char *out, const char *rt, const char *obj, const char *wobj)
{
	static bool gold_broken;
	if (!gold_broken) {
		Diag gdiag = {0};
		if (run_link(be, "-fuse-ld=gold", rt, out, obj, wobj, &gdiag) == 0)
			return 0;
	}
	int rc = run_link(be, NULL, rt, out, obj, wobj, be->diag);
	if (rc == 0)
		gold_broken = true;
	return rc;
}

static int link_so(Be *be, LLVMTargetMachineRef tm, const Staged *so, BeStats *stats)
{
	/* found once, before code generation: not after it, and not per linker */
	char rtbuf[4200], ccbuf[128];
	const char *rt = runtime_lib(be, rtbuf, sizeof rtbuf, be->diag);
	if (!rt)
		return -1;
	const char *cc = target_cc(be, ccbuf, sizeof ccbuf);
	if (strcmp(cc, "cc") && !in_path(cc))
		return diag_fail(be->diag, "%s not found: linking a .so for '%s' needs it (Debian: "
		                 "apt-get install gcc-%s)", cc, be->opt->target_triple,
		                 be_cross_gnu(be->opt->target_triple));
	TmpDir t = {0};
	if (tmp_open(&t, be->diag))
		return -1;
	const char *obj = tmp_file(&t, "model.o"), *wobj = NULL;
	char *err = NULL;
	int rc = 0;
	if (LLVMTargetMachineEmitToFile(tm, be->mod, (char *)obj, LLVMObjectFile, &err)) {
		rc = diag_fail(be->diag, "internal error: LLVM code generation failed: %s", err);
		LLVMDisposeMessage(err);
	}
	double t0 = be_now_ms();
	if (!rc && be->g_weights && !be->weights_defined)
		rc = assemble_weights(be, &t, &wobj);
	if (!rc) {
		rc = link_objs(be, so->tmp, rt, obj, wobj);
		struct stat st;
		if (!rc && (stat(so->tmp, &st) || !S_ISREG(st.st_mode) || st.st_size == 0))
			rc = diag_fail(be->diag, "%s: the linker left no output", be->opt->out);
		if (rc)
			unlink(so->tmp);          /* whatever the failed link left there */
	}
	stats->link_ms = be_now_ms() - t0;
	tmp_close(&t);
	return rc;
}

/* Whether triple names this machine's architecture (the part before '-'). */
static bool same_arch(const char *triple)
{
	char *host = LLVMGetDefaultTargetTriple();
	size_t n = strcspn(host, "-");
	bool same = strncmp(host, triple, n) == 0 && (triple[n] == '-' || triple[n] == 0);
	LLVMDisposeMessage(host);
	return same;
}

char *be_triple(const char *target_triple)
{
	return target_triple ? LLVMNormalizeTargetTriple(target_triple) : LLVMGetDefaultTargetTriple();
}

static LLVMTargetMachineRef make_tm(Be *be)
{
	/* every target LLVM was built with: --target-triple may name another
	 * architecture for --emit=obj/asm/llvm */
	LLVMInitializeAllTargetInfos();
	LLVMInitializeAllTargets();
	LLVMInitializeAllTargetMCs();
	LLVMInitializeAllAsmPrinters();
	const BeOptions *o = be->opt;
	bool host = !o->target_triple && !o->target_cpu;
	char *triple = be_triple(o->target_triple);
	/* no --target-cpu: this machine's CPU, or "generic" for another triple */
	char *cpu = o->target_cpu || o->target_triple ? NULL : LLVMGetHostCPUName();
	char *feat = host ? LLVMGetHostCPUFeatures() : NULL;
	/* aarch64 without --target-cpu: "generic" with NEON (every aarch64
	 * Linux has it; the runtime's kernels use it too) */
	const char *deff = !host && !o->target_cpu && !strncmp(triple, "aarch64", 7) ? "+neon" : "";
	LLVMTargetRef target;
	char *err = NULL;
	LLVMTargetMachineRef tm = NULL;
	if (LLVMGetTargetFromTriple(triple, &target, &err)) {
		diag_fail(be->diag, "target '%s': %s", triple, err);
		LLVMDisposeMessage(err);
	} else if (o->emit == BE_EMIT_SO && !same_arch(triple) && !be_cross_gnu(o->target_triple)) {
		diag_fail(be->diag, "target '%s': kiln links .so files for this machine and "
		          "aarch64-linux-gnu only; use --emit=obj and link it there with libkiln_rt.a",
		          triple);
	} else {
		int lvl = o->opt_level;
		LLVMCodeGenOptLevel cg = lvl <= 0 ? LLVMCodeGenLevelNone
		                       : lvl == 1 ? LLVMCodeGenLevelLess
		                       : lvl == 2 ? LLVMCodeGenLevelDefault : LLVMCodeGenLevelAggressive;
		tm = LLVMCreateTargetMachine(target, triple,
		                             o->target_cpu ? o->target_cpu : cpu ? cpu : "generic",
		                             feat ? feat : deff, cg, LLVMRelocPIC, LLVMCodeModelDefault);
		if (!tm)
			diag_fail(be->diag, "cannot create a target machine for '%s'", triple);
		else
			LLVMSetTarget(be->mod, triple);
	}
	LLVMDisposeMessage(triple);
	if (cpu)
		LLVMDisposeMessage(cpu);
	if (feat)
		LLVMDisposeMessage(feat);
	return tm;
}

static int optimize(Be *be, LLVMTargetMachineRef tm)
{
	char *err = NULL;
	if (LLVMVerifyModule(be->mod, LLVMReturnStatusAction, &err)) {
		int rc = diag_fail(be->diag, "internal error: generated LLVM IR does not verify: %s", err);
		LLVMDisposeMessage(err);
		return rc;
	}
	LLVMDisposeMessage(err);
	LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
	LLVMSetModuleDataLayout(be->mod, dl);
	LLVMDisposeTargetData(dl);
	char pipeline[32];
	int lvl = be->opt->opt_level < 0 ? 0 : be->opt->opt_level > 3 ? 3 : be->opt->opt_level;
	snprintf(pipeline, sizeof pipeline, "default<O%d>", lvl);
	LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
	LLVMErrorRef e = LLVMRunPasses(be->mod, pipeline, tm, po);
	LLVMDisposePassBuilderOptions(po);
	if (e) {
		char *m = LLVMGetErrorMessage(e);
		int rc = diag_fail(be->diag, "internal error: LLVM passes failed: %s", m);
		LLVMDisposeErrorMessage(m);
		return rc;
	}
	return 0;
}

static int emit_file(Be *be, LLVMTargetMachineRef tm)
{
	char *err = NULL;
	const char *out = be->opt->out;
	int bad;
	if (be->opt->emit == BE_EMIT_LLVM)
		bad = LLVMPrintModuleToFile(be->mod, out, &err);
	else
		bad = LLVMTargetMachineEmitToFile(tm, be->mod, (char *)out,
		                                  be->opt->emit == BE_EMIT_ASM ? LLVMAssemblyFile
		                                                               : LLVMObjectFile, &err);
	if (!bad)
		return 0;
	int rc = diag_fail(be->diag, "cannot write %s: %s", out, err ? err : "?");
	LLVMDisposeMessage(err);
	return rc;
}

/* An output path must be a regular file (or not exist yet, in a folder we
 * may write): /dev/full, a FIFO or a directory would fail late, hang, or
 * make the linker loop. */
static int check_output(const char *out, Diag *diag)
{
	struct stat st;
	if (stat(out, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return diag_fail(diag, "%s: output is %s, not a regular file", out,
			                 S_ISDIR(st.st_mode) ? "a directory"
			                 : S_ISFIFO(st.st_mode) ? "a FIFO"
			                 : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
			                 : "special");
		if (access(out, W_OK))
			return diag_fail(diag, "%s: cannot write: %s", out, strerror(errno));
		return 0;
	}
	if (errno != ENOENT)
		return diag_fail(diag, "%s: cannot write: %s", out, strerror(errno));
	char dir[4096];
	const char *slash = strrchr(out, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == out)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - out), out);
	int e = 0;
	if (stat(dir, &st))
		e = errno;
	else if (!S_ISDIR(st.st_mode))
		e = ENOTDIR;
	else if (access(dir, W_OK | X_OK))
		e = errno;
	return e ? diag_fail(diag, "%s: cannot create: %s", out, strerror(e)) : 0;
}

static int check_outputs(Be *be)
{
	const BeOptions *o = be->opt;
	char h[BE_PATH_MAX], w[BE_PATH_MAX];
	/* every path's length first: its message is short, a file system's
	 * (ENAMETOOLONG) would be mostly the path */
	if (be_path(be->diag, h, sizeof h, "%s", o->out) ||
	    (o->emit == BE_EMIT_SO && be_side_path(o->out, ".h", h, sizeof h, be->diag)) ||
	    (o->weights_external && be_side_path(o->out, ".weights", w, sizeof w, be->diag)))
		return -1;
	if (check_output(o->out, be->diag) ||
	    (o->emit == BE_EMIT_SO && check_output(h, be->diag)) ||
	    (o->weights_external && check_output(w, be->diag)))
		return -1;
	return 0;
}

int be_codegen(Be *be, BeStats *stats)
{
	if (check_outputs(be))
		return -1;
	LLVMTargetMachineRef tm = make_tm(be);
	if (!tm)
		return -1;
	int rc = optimize(be, tm);
	Staged w, so;
	char wpath[BE_PATH_MAX];
	/* the lengths were checked by check_outputs; a symlink's target may
	 * still be too long */
	if (!rc)
		rc = be_side_path(be->opt->out, ".weights", wpath, sizeof wpath, be->diag) ||
		     stage(&w, wpath, be->diag) || stage(&so, be->opt->out, be->diag) ? -1 : 0;
	if (rc) {
		LLVMDisposeTargetMachine(tm);
		return rc;
	}
	bool wext = be->opt->weights_external;
	if (!rc && wext)
		rc = write_file(w.tmp, be->blob, be->blob_bytes, be->diag);
	if (!rc)
		rc = be->opt->emit == BE_EMIT_SO ? link_so(be, tm, &so, stats) : emit_file(be, tm);
	/* the weights first: a .so is never there before its weights */
	if (!rc && wext)
		rc = stage_commit(&w, be->diag);
	if (!rc && be->opt->emit == BE_EMIT_SO)
		rc = stage_commit(&so, be->diag);
	if (rc && wext)
		unlink(w.tmp);                  /* no OUT.weights without its OUT */
	LLVMDisposeTargetMachine(tm);
	return rc;
}

/* ---- --target-cpu, checked before anything is compiled -----------------
 * LLVM's C API cannot list or validate CPU names, and an unknown name (or a
 * CPU that cannot run 64-bit code, for an x86-64 triple) aborts the
 * process inside code generation.  So a child process creates the target
 * machine and compiles an empty function; what LLVM says on its stderr
 * and how the child ends tell the parent whether the name is usable.  With
 * "help" LLVM prints its CPU table there, which is passed on. */

static void probe_child(const char *triple, const char *cpu, int fd)
{
	dup2(fd, 2);
	LLVMInitializeAllTargetInfos();
	LLVMInitializeAllTargets();
	LLVMInitializeAllTargetMCs();
	LLVMInitializeAllAsmPrinters();
	LLVMTargetRef target;
	char *err = NULL;
	if (LLVMGetTargetFromTriple(triple, &target, &err))
		_exit(3);
	LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, "", LLVMCodeGenLevelNone,
	                                                  LLVMRelocPIC, LLVMCodeModelDefault);
	LLVMContextRef ctx = LLVMContextCreate();
	LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("probe", ctx);
	LLVMSetTarget(mod, triple);
	LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(ctx), NULL, 0, 0);
	LLVMValueRef fn = LLVMAddFunction(mod, "probe", fty);
	LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
	LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "e"));
	LLVMBuildRetVoid(b);
	LLVMMemoryBufferRef mb = NULL;
	if (!tm || LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &err, &mb))
		_exit(4);
	_exit(0);
}

int be_check_target_cpu(const char *triple_opt, const char *cpu, FILE *help_out, Diag *diag)
{
	if (!cpu)
		return 0;
	if (!cpu[0])
		return diag_fail(diag, "--target-cpu: empty name");
	char *triple = be_triple(triple_opt);
	int fds[2];
	if (pipe(fds)) {
		LLVMDisposeMessage(triple);
		return diag_fail(diag, "--target-cpu: pipe: %s", strerror(errno));
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		probe_child(triple, cpu, fds[1]);
	}
	close(fds[1]);
	/* what LLVM printed, at most 256 KB (the help table is ~20 KB) */
	size_t cap = 256 * 1024, n = 0;
	char *text = malloc(cap + 1);
	if (!text)
		abort();
	for (ssize_t r; pid > 0 && (r = read(fds[0], text + n, cap - n)) != 0;) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (n += (size_t)r) == cap)
			break;
	}
	close(fds[0]);
	text[n] = 0;
	int status = 0;
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	int rc = 0;
	const char *list = strstr(text, "Available CPUs for this target:");
	if (pid < 0) {
		rc = diag_fail(diag, "--target-cpu: fork: %s", strerror(errno));
	} else if (!strcmp(cpu, "help")) {
		if (!list) {
			rc = diag_fail(diag, "--target-cpu=help: LLVM lists no CPUs for '%s'", triple);
		} else {
			const char *end = strstr(list, "Available features");
			fprintf(help_out, "CPUs LLVM knows for %s:\n%.*s",
			        triple, (int)(end ? end - list : (ptrdiff_t)strlen(list)) - 32, list + 32);
			rc = 1;
		}
	} else if (strstr(text, "not a recognized processor")) {
		rc = diag_fail(diag, "--target-cpu=%s: not a CPU LLVM knows for '%s' (--target-cpu=help lists them)",
		               cpu, triple);
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		rc = diag_fail(diag, "--target-cpu=%s: LLVM cannot generate code for '%s' with it%s",
		               cpu, triple, strstr(text, "64-bit code requested") ? " (not a 64-bit CPU)" : "");
	}
	free(text);
	LLVMDisposeMessage(triple);
	return rc;
}

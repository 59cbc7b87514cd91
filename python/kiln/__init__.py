"""kiln from Python: compile ONNX models with kiln and run them on numpy arrays.

    import kiln
    kiln.compile("model.onnx", "model.so", opt_level=2)   # the kiln CLI
    print(kiln.dump("model.onnx", print_after="fuse-gelu"))   # kiln's IR
    m = kiln.load("model.so")
    m.inputs                      # [NodeArg(name='input_ids', type='tensor(int64)', shape=['batch', 'sequence']), ...]
    s = m.session(threads=2)
    s.run({"input_ids": ids, "attention_mask": mask, "token_type_ids": tt})  # {name: ndarray}
    s.run(None, feeds)            # [ndarray, ...] in output order, as ONNX Runtime
    s.run(["start_logits"], feeds)

    sess = kiln.InferenceSession("model.onnx")   # ONNX Runtime's API; compiles to a cache
    sess.run(None, feeds)

    s.start_profiling(); s.run(feeds)    # the time of every op (or sess_options.enable_profiling)
    s.end_profiling("trace.json")         # Chrome trace JSON, as ONNX Runtime writes it
    s.profile_events()                    # [{"kind": "node", "op": "KlnGemm", "dur_ns": ...}, ...]

Every failure is a kiln.Error carrying kiln's one-line message.  A session
is one kiln context: use it from one thread at a time (a second thread's
run on it raises kiln.Error at once); sessions are independent and run in
parallel.  The GIL is released while a model runs.
"""
import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import numpy as np

__version__ = "0.1.0"
__all__ = ["Error", "compile", "dump", "load", "Model", "Session", "NodeArg", "InferenceSession",
           "cli_path", "library_path"]


class Error(Exception):
    """A kiln failure; str(e) is kiln's one-line message."""

    def __init__(self, message, returncode=None):
        super().__init__(message)
        self.returncode = returncode


from . import _capi  # noqa: E402  (needs Error)

# kiln_dtype -> (numpy dtype, ONNX Runtime's type name).  bf16 has no numpy
# type: its tensors are passed and returned as uint16 bit patterns.
_DTYPES = {
    1: (np.float32, "float"), 2: (np.uint8, "uint8"), 3: (np.int8, "int8"),
    4: (np.uint16, "uint16"), 5: (np.int16, "int16"), 6: (np.int32, "int32"),
    7: (np.int64, "int64"), 9: (np.bool_, "bool"), 10: (np.float16, "float16"),
    11: (np.float64, "double"), 12: (np.uint32, "uint32"), 13: (np.uint64, "uint64"),
    16: (np.uint16, "bfloat16"),
}


class NodeArg:
    """An input or output of a model, as ONNX Runtime's NodeArg: name, type
    ('tensor(int64)'), shape (ints for fixed dims, strings for symbolic ones:
    'batch', 's25 + s41'); dtype is the numpy dtype of its arrays."""

    def __init__(self, name, code, dims):
        self.name = name
        self.code = code
        np_t, ort = _DTYPES.get(code, (None, "unknown(%d)" % code))
        self.dtype = np.dtype(np_t) if np_t is not None else None
        self.type = "tensor(%s)" % ort
        self.shape = [int(d) if _is_int(d) else d for d in dims]

    def __repr__(self):
        return "NodeArg(name=%r, type=%r, shape=%r)" % (self.name, self.type, self.shape)

    def describe(self):
        """'int64[batch, sequence]'"""
        return "%s[%s]" % (self.type[7:-1], ", ".join(str(d) for d in self.shape))


def _is_int(d):
    return d.lstrip("-").isdigit()


def _io(info):
    i = info.contents
    return NodeArg(_capi.text(i.name), i.dtype, [_capi.text(i.dims[k]) for k in range(i.rank)])


# ---- compiling: the kiln command line ---------------------------------------

_HERE = os.path.dirname(os.path.abspath(__file__))


def _installed(attr):
    try:
        from . import _install
    except ImportError:
        return None
    return os.path.normpath(os.path.join(_HERE, getattr(_install, attr)))


def cli_path():
    """The kiln command that compile() runs: $KILN_CLI; the installed one
    (PREFIX/bin/kiln beside this package's prefix); the build tree's
    (python/kiln/../../build/kiln); else `kiln` on PATH."""
    env = os.environ.get("KILN_CLI")
    if env:
        return env
    bindir = _installed("BINDIR")
    for p in ([os.path.join(bindir, "kiln")] if bindir else []) + \
            [os.path.join(_HERE, "..", "..", "build", "kiln")]:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return os.path.normpath(p)
    p = shutil.which("kiln")
    if p:
        return p
    raise Error("cannot find the kiln command (build kiln, install it, put it on PATH, or set "
                "KILN_CLI=/path/to/kiln)")


def library_path():
    """The libkiln.so that load() uses (loading it if needed)."""
    return _capi.lib()._name


def _path(p, what="path"):
    """p (str, bytes or os.PathLike) as a str; a NUL byte (which the C side
    would cut the path at) raises Error."""
    try:
        p = os.fsdecode(os.fspath(p))
    except TypeError:
        raise Error("%s must be a str, bytes or os.PathLike, not %s" % (what, type(p).__name__)) from None
    if "\0" in p:
        raise Error("%s %r holds a NUL byte" % (what, p))
    return p


def _cli_path(p, what):
    """A path as a `kiln` argument: one starting with '-' would be read as
    an option (a model named --runtime-lib=x.a), so it gets './'."""
    p = _path(p, what)
    return "./" + p if p.startswith("-") else p


def _opt_args(opt_level=2, fpmath="fp32", name=None, emit=None, target_cpu=None,
              target_triple=None, weights=None, dim_names=None, runtime_lib=None,
              max_tensor_bytes=None, max_node_operands=None, passes=None, disable_patterns=(),
              verify_each=False, extra_args=()):
    """The CLI options for compile()'s keyword arguments."""
    if opt_level not in (0, 1, 2):
        raise Error("opt_level must be 0, 1 or 2, not %r" % (opt_level,))
    a = ["-O%d" % opt_level, "--fpmath=%s" % fpmath]
    for flag, v in (("--name", name), ("--emit", emit), ("--target-cpu", target_cpu),
                    ("--target-triple", target_triple), ("--weights", weights),
                    ("--runtime-lib", runtime_lib), ("--max-tensor-bytes", max_tensor_bytes),
                    ("--max-node-operands", max_node_operands)):
        if v is not None:
            a.append("%s=%s" % (flag, v))
    if dim_names:
        pairs = [(str(k), str(v)) for k, v in dict(dim_names).items()]
        for kv in pairs:   # ',' and '=' separate the pairs of the one CLI option
            if any(c in x for x in kv for c in ",=\0") or not all(kv):
                raise Error("dim_names: %r: %r is not a dim name (empty, or holds ',' '=' or NUL)"
                            % kv)
        a.append("--dim-name=" + ",".join("%s=%s" % kv for kv in pairs))
    if passes is not None:
        a.append("--passes=" + (passes if isinstance(passes, str) else ",".join(passes)))
    for p in ([disable_patterns] if isinstance(disable_patterns, str) else disable_patterns):
        a.append("--disable-pattern=" + p)
    if verify_each:
        a.append("--verify-each")
    return a + [str(x) for x in extra_args]


def _run_cli(args):
    try:
        r = subprocess.run([cli_path()] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise Error("cannot run the kiln command %s: %s" % (cli_path(), e.strerror)) from None
    if r.returncode != 0:
        lines = [ln for ln in r.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        msg = lines[-1] if lines else "kiln %s failed with exit status %d" % (args[0], r.returncode)
        raise Error(msg, r.returncode)
    return r.stdout.decode("utf-8", "replace")


def compile(model, output, opt_level=2, fpmath="fp32", name=None, *, stats=False, **options):
    """Compiles the ONNX file `model` to `output` (a .so, with output's .h
    beside it) by running `kiln compile`; the options are the CLI's:
    opt_level (-O0..-O2), fpmath ('fp32', 'bf16'), name (--name), emit
    ('so', 'obj', 'llvm', 'asm'), target_cpu, target_triple, weights
    ('embed', 'external'), dim_names ({sym: name}), runtime_lib,
    max_tensor_bytes (int or '4G'), max_node_operands (int: most inputs +
    outputs of one node), passes (list), disable_patterns (list),
    verify_each (bool), extra_args (more CLI arguments, verbatim).
    Returns output's path, or with stats=True the --stats JSON object as a
    dict.  Raises kiln.Error with kiln's one-line message."""
    output = _path(output, "output")
    args = ["compile", _cli_path(model, "model"), "-o", _cli_path(output, "output")]
    args += _opt_args(opt_level, fpmath, name, **options)
    if stats:
        args.append("--stats")
    out = _run_cli(args)
    if stats:
        return json.loads(out.strip().splitlines()[-1])
    return output


def dump(model, opt_level=2, format="text", print_before=None, print_after=None,
         print_after_all=False, **options):
    """kiln's IR of the ONNX file `model` after the -O pipeline, as `kiln
    dump` prints it (format 'text' or 'dot'); print_before/print_after (a
    pass name) and print_after_all add the IR around passes.  Other options
    as compile()'s (passes, disable_patterns, verify_each, ...).  Returns
    the text; raises kiln.Error with kiln's one-line message."""
    args = ["dump", _cli_path(model, "model"), "--format=%s" % format]
    args += _opt_args(opt_level, **options)
    for flag, v in (("--print-before", print_before), ("--print-after", print_after)):
        if v is not None:
            args.append("%s=%s" % (flag, v))
    if print_after_all:
        args.append("--print-after-all")
    return _run_cli(args)


# ---- loading and running ------------------------------------------------------

def load(path):
    """Loads a compiled model (.so); raises kiln.Error if it cannot."""
    return Model(path)


class _Closing:
    """close() when garbage-collected or at the end of a with block."""

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Model(_Closing):
    """A loaded compiled model: inputs, outputs, info; session() runs it."""

    def __init__(self, path):
        self.path = _path(path)
        lib = _capi.lib()
        h = lib.kiln_model_load(os.fsencode(self.path))
        if not h:
            raise Error(_capi.text(lib.kiln_load_error()) or "%s: cannot load" % self.path)
        self._h = h
        self._lib = lib
        self.inputs = [_io(lib.kiln_model_input(h, i)) for i in range(lib.kiln_model_num_inputs(h))]
        self.outputs = [_io(lib.kiln_model_output(h, i))
                        for i in range(lib.kiln_model_num_outputs(h))]
        info = _capi.ModelInfo()
        lib.kiln_model_get_info(h, ctypes.byref(info))
        t = _capi.text
        self.info = {
            "name": t(info.name), "kiln_version": t(info.kiln_version),
            "abi_version": info.abi_version, "target_triple": t(info.target_triple),
            "target_cpu": t(info.target_cpu), "cpu_features": t(info.cpu_features),
            "fpmath": t(info.fpmath), "weights_file": t(info.weights_file),
            "weights_bytes": info.weights_bytes, "weights_hash": "%016x" % info.weights_hash,
        }

    def session(self, threads=None):
        """A new session (kiln context) with `threads` threads (default: the
        CPUs this process may run on, at most 256)."""
        return Session(self, threads)

    def close(self):
        """Frees the model handle; its sessions keep working (a context keeps
        its model loaded)."""
        h, self._h = getattr(self, "_h", None), None
        if h:
            self._lib.kiln_model_free(h)

    def __repr__(self):
        return "kiln.Model(%r, inputs=%r, outputs=%r)" % (self.path, self.inputs, self.outputs)


def _default_threads():
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, 256))


class Session(_Closing):
    """One kiln context of a model.  run() from one thread at a time (a
    concurrent run on the same session raises kiln.Error); several sessions
    run in parallel, the GIL released while each runs."""

    def __init__(self, model, threads=None):
        if not model._h:
            raise Error("%s: the model was closed" % model.path)
        threads = _default_threads() if threads is None else threads
        if not isinstance(threads, (int, np.integer)) or isinstance(threads, (bool, np.bool_)) \
                or not 1 <= threads <= 256:
            raise Error("threads must be a whole number from 1 to 256, not %r" % (threads,))
        threads = int(threads)      # a numpy integer too (sess_options from numpy code)
        self.model = model
        self.threads = threads
        self._lib = model._lib
        c = self._lib.kiln_context_create(model._h, threads)
        if not c:
            raise Error(_capi.text(self._lib.kiln_load_error()) or
                        "%s: cannot create a context" % model.path)
        self._c = c
        # held from kiln_run until the outputs are copied out of the context
        # (the next run overwrites them): a second thread is refused, as
        # kiln_run itself refuses it (KILN_BUSY)
        self._busy = threading.Lock()

    @property
    def arena_bytes(self):
        """Bytes of the planned arena for the last run's shapes."""
        return self._lib.kiln_context_arena_bytes(self._c) if self._c else 0

    def close(self):
        """Frees the context (not while another thread runs it: then kiln.Error)."""
        busy = getattr(self, "_busy", None)
        if busy is not None and not busy.acquire(blocking=False):
            raise Error("%s: cannot close the session while another thread runs it"
                        % self.model.path)
        c, self._c = getattr(self, "_c", None), None
        if busy is not None:
            busy.release()
        if c:
            self._lib.kiln_context_free(c)

    def get_inputs(self):
        return list(self.model.inputs)

    # -- profiling (kiln.h kiln_context_profile_*) --

    def start_profiling(self):
        """Records the time of every op of the runs that follow (an earlier
        profile is cleared)."""
        self._profile_call(self._lib.kiln_context_profile_start)

    def end_profiling(self, path=None):
        """Stops recording and writes the Chrome trace (Trace Event JSON, as
        ONNX Runtime's profiler writes it) to path, by default
        <prefix>_<date>_<time>.json in the current folder (prefix: the
        InferenceSession's sess_options.profile_file_prefix, else
        "kiln_profile"); returns the path, as ONNX Runtime's end_profiling
        does."""
        if path is None:
            path = "%s_%s.json" % (getattr(self, "_profile_prefix", None) or "kiln_profile",
                                   time.strftime("%Y-%m-%d_%H-%M-%S"))
        path = _path(path)
        self._profile_call(self._lib.kiln_context_profile_stop)
        self._profile_call(self._lib.kiln_context_profile_write, os.fsencode(path))
        return path

    def profile_events(self):
        """The events recorded since start_profiling, as dicts: kind ("node":
        one op of one run, on thread 0; "job": a pool thread's share of an
        op's parallel work; "run": one run), thread, run, node (index),
        op, name, fused_from (list), start_ns, dur_ns, flops (GEMMs and
        attention)."""
        if not self._busy.acquire(blocking=False):
            raise Error("%s: the session is in use by another thread" % self.model.path)
        try:
            out = []
            e = _capi.ProfileEvent()
            for i in range(self._lib.kiln_context_profile_count(self._c) if self._c else 0):
                if self._lib.kiln_context_profile_event(self._c, i, ctypes.byref(e)):
                    continue
                out.append({"kind": _capi.PROFILE_KINDS.get(e.kind, str(e.kind)),
                            "thread": e.thread, "run": e.run, "node": e.node,
                            "op": _capi.text(e.op), "name": _capi.text(e.name),
                            "fused_from": [_capi.text(e.fused_from[k]) for k in range(e.nfused)],
                            "start_ns": e.start_ns, "dur_ns": e.dur_ns, "flops": e.flops})
            return out
        finally:
            self._busy.release()

    def _profile_call(self, fn, *args):
        if not self._busy.acquire(blocking=False):
            raise Error("%s: the session is in use by another thread" % self.model.path)
        try:
            if not self._c:
                raise Error("%s: the session was closed" % self.model.path)
            if fn(self._c, *args) != 0:
                raise Error("%s: %s" % (self.model.path, _capi.text(
                    self._lib.kiln_last_error(self._c)) or "profiling failed"))
        finally:
            self._busy.release()

    def get_outputs(self):
        return list(self.model.outputs)

    def run(self, output_names, input_feed=None, run_options=None):
        """run({name: array}) -> {name: array}; run(None, feeds) -> [array, ...]
        in output order; run([names], feeds) -> [array, ...] in that order
        (ONNX Runtime's InferenceSession.run)."""
        if input_feed is None and isinstance(output_names, dict):
            res = self._run(output_names)
            return dict(zip((o.name for o in self.model.outputs), res))
        if not isinstance(input_feed, dict):
            raise Error("%s: run takes (output_names, {input name: array}), got a %s as the "
                        "feeds" % (self.model.path, type(input_feed).__name__))
        outs = self.model.outputs
        names = [o.name for o in outs]
        if output_names is None:
            pick = range(len(outs))
        else:
            if isinstance(output_names, str):
                raise Error("%s: output_names must be a list of names, not the string %r"
                            % (self.model.path, output_names))
            pick = []
            for n in output_names:
                if n not in names:
                    raise Error("%s: '%s' is not an output of the model (outputs: %s)"
                                % (self.model.path, n, ", ".join(names)))
                pick.append(names.index(n))
        res = self._run(input_feed)
        return [res[i] for i in pick]

    # -- internals --

    def _arrays(self, feeds):
        """The feeds as C-contiguous arrays in model order, checked."""
        path = self.model.path
        ins = self.model.inputs
        known = {i.name for i in ins}
        for n in feeds:
            if n not in known:
                raise Error("%s: '%s' is not an input of the model (inputs: %s)"
                            % (path, n, ", ".join(i.name for i in ins)))
        missing = [i for i in ins if i.name not in feeds]
        if missing:
            raise Error("%s: missing input%s %s" % (path, "s" if len(missing) > 1 else "", ", ".join(
                "'%s' (%s)" % (i.name, i.describe()) for i in missing)))
        arrays, bound = [], {}
        for io in ins:
            a = feeds[io.name]
            if not isinstance(a, np.ndarray):
                try:
                    a = np.asarray(a)
                except Exception as e:   # noqa: BLE001  (numpy raises many kinds)
                    raise Error("%s: input '%s': not an array (%s)" % (path, io.name, e)) from None
            if isinstance(a, np.ma.MaskedArray) and np.ma.is_masked(a):
                # the C side would read the values under the mask as data
                raise Error("%s: input '%s': a masked array with %d masked value%s (kiln does "
                            "not read masks: pass a.filled(value))"
                            % (path, io.name, np.ma.count_masked(a),
                               "" if np.ma.count_masked(a) == 1 else "s"))
            if io.dtype is None or a.dtype != io.dtype:
                raise Error("%s: input '%s': dtype %s, expected %s (ONNX Runtime refuses it too; "
                            "convert with .astype(numpy.%s))"
                            % (path, io.name, a.dtype, io.type, io.dtype))
            if a.ndim != len(io.shape):
                raise Error("%s: input '%s': rank %d (shape %s), expected %d: %s"
                            % (path, io.name, a.ndim, list(a.shape), len(io.shape), io.describe()))
            self._check_dims(io, a.shape, bound)
            # C order and aligned for the dtype (a view at an odd byte offset
            # is copied: the kernels load elements at their natural alignment)
            arrays.append(self._contiguous(io, a))
        return arrays

    def _contiguous(self, io, a):
        """a as a C-ordered, aligned array (copied if it is not one).  A
        broadcast view stands for more bytes than it holds: one over the
        runtime's default tensor limit (kiln compile --max-tensor-bytes, 64
        GiB) is refused before numpy tries to allocate the copy."""
        a = np.asarray(a)
        if a.flags.c_contiguous and a.flags.aligned:
            return a
        if a.size * a.itemsize > _COPY_LIMIT:
            raise Error("%s: input '%s': shape %s (%d bytes, over the %d-byte tensor limit) is "
                        "not contiguous: kiln would have to copy it"
                        % (self.model.path, io.name, list(a.shape), a.size * a.itemsize,
                           _COPY_LIMIT))
        try:
            return np.require(a, requirements=("C", "A"))
        except MemoryError as e:
            raise Error("%s: input '%s': shape %s: cannot copy it to a contiguous array (%s)"
                        % (self.model.path, io.name, list(a.shape), e)) from None

    def _check_dims(self, io, shape, bound):
        path = self.model.path
        for k, (want, got) in enumerate(zip(io.shape, shape)):
            if isinstance(want, int):
                if got != want:
                    raise Error("%s: input '%s' dim %d: %d, expected %d (%s)"
                                % (path, io.name, k, got, want, io.describe()))
            elif _is_symbol(want):
                if want in bound and bound[want][0] != got:
                    v, who, kk = bound[want]
                    raise Error("%s: input '%s' dim %d (%s) is %d, but input '%s' dim %d gives "
                                "%s = %d" % (path, io.name, k, want, got, who, kk, want, v))
                bound.setdefault(want, (got, io.name, k))

    def _run(self, feeds):
        arrays = self._arrays(feeds)
        if not self._busy.acquire(blocking=False):
            raise Error("%s: the session is in use by another thread (one run at a time per "
                        "session: use a session per thread)" % self.model.path)
        try:
            return self._run_locked(arrays)
        finally:
            self._busy.release()

    def _run_locked(self, arrays):
        if not self._c:
            raise Error("%s: the session was closed" % self.model.path)
        nin, nout = len(arrays), len(self.model.outputs)
        tin = (_capi.Tensor * max(nin, 1))()
        for t, a, io in zip(tin, arrays, self.model.inputs):
            t.dtype = io.code
            t.rank = a.ndim
            for k, d in enumerate(a.shape):
                t.shape[k] = d
            t.data = a.ctypes.data if a.size else None
            t.nbytes = a.nbytes
        tout = (_capi.Tensor * max(nout, 1))()        # data NULL: context-owned
        rc = self._lib.kiln_run(self._c, tin, nin, tout, nout)   # GIL released here
        if rc != 0:
            msg = _capi.text(self._lib.kiln_last_error(self._c)) or "kiln_run failed"
            raise Error("%s: %s" % (self.model.path, msg))
        return [_to_numpy(tout[i]) for i in range(nout)]


_COPY_LIMIT = 64 << 30      # the runtime's default tensor limit (kiln compile --max-tensor-bytes)


def _is_symbol(d):
    """A plain dim name ('batch', 'batch-size'), not an expression of the
    dynamo exporter's form ('s25 + s41', '2*s41')."""
    return not any(c in d for c in " +*/()") and not _is_int(d)


def _to_numpy(t):
    """A copy of a context-owned output (valid only until the next run)."""
    np_t = _DTYPES.get(t.dtype, (None,))[0]
    if np_t is None:
        raise Error("output of unknown dtype %d" % t.dtype)
    shape = tuple(t.shape[k] for k in range(t.rank))
    out = np.empty(shape, dtype=np_t)
    if out.nbytes:
        if out.nbytes != t.nbytes or not t.data:
            raise Error("output of shape %s has %d bytes, expected %d" % (shape, t.nbytes, out.nbytes))
        ctypes.memmove(out.ctypes.data, t.data, out.nbytes)
    return out


# ---- ONNX Runtime's InferenceSession ---------------------------------------------

def _cache_dir(cache_dir):
    if cache_dir:
        return os.fspath(cache_dir)
    if os.environ.get("KILN_CACHE_DIR"):
        return os.environ["KILN_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "kiln")


def _cache_key(model_path, data, args):
    """What the compiled model depends on: the model's bytes, the files
    beside it (external data: their names, sizes and times), the options
    and the compiler's version (with its git commit)."""
    h = hashlib.sha256(data)
    folder = os.path.dirname(os.path.abspath(model_path)) if model_path else None
    if folder:
        for n in sorted(os.listdir(folder)):
            p = os.path.join(folder, n)
            if os.path.isfile(p) and n != os.path.basename(model_path):
                st = os.stat(p)
                h.update(("%s:%d:%d;" % (n, st.st_size, st.st_mtime_ns)).encode())
    h.update("\0".join(args).encode())
    h.update(_run_cli(["--version"]).encode())
    return h.hexdigest()[:32]


def _compile_cached(model, cache_dir, options):
    """Compiles an ONNX model (a path or its bytes) into the cache, once per
    content and options; returns the .so's path."""
    options = dict(options)
    options.setdefault("name", "model")       # model.h's entry point: model_run
    args = _opt_args(**options)
    path = None if isinstance(model, (bytes, bytearray)) else os.fspath(model)
    if path is None:
        data = bytes(model)
    else:
        with open(path, "rb") as f:
            data = f.read()
    root = _cache_dir(cache_dir)
    final = os.path.join(root, _cache_key(path, data, args))
    so = os.path.join(final, "model.so")
    if os.path.isfile(so):
        return so
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="tmp-", dir=root)
    try:
        src = path
        if path is None:
            src = os.path.join(tmp, "model.onnx")
            with open(src, "wb") as f:
                f.write(data)
        compile(src, os.path.join(tmp, "model.so"), **options)
        if path is None:
            os.unlink(src)
        try:
            os.rename(tmp, final)       # atomic: another process may have won
        except OSError:
            if not os.path.isfile(so):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return so


def _is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


class InferenceSession(Session):
    """ONNX Runtime's InferenceSession over kiln: swap
        sess = onnxruntime.InferenceSession("model.onnx", providers=[...])
    for
        sess = kiln.InferenceSession("model.onnx")
    and sess.run(None, feeds), sess.get_inputs(), sess.get_outputs() work
    the same.  A compiled .so is loaded as is; an ONNX model (path or bytes)
    is compiled first into a cache folder (cache_dir, else $KILN_CACHE_DIR,
    else ~/.cache/kiln), keyed by its content, the options and the
    compiler's version.  threads: default sess_options.intra_op_num_threads
    when set, else the CPUs this process may use.  Other keyword arguments
    are compile()'s options (opt_level, fpmath, ...)."""

    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None,
                 *, threads=None, cache_dir=None, **compile_options):
        src = path_or_bytes
        try:
            onnx = isinstance(src, (bytes, bytearray)) or not _is_elf(os.fspath(src))
            so = _compile_cached(src, cache_dir, compile_options) if onnx else None
        except OSError as e:
            raise Error("%s: %s" % (e.filename or "model", e.strerror)) from None
        if not onnx:
            if compile_options:
                raise Error("%s is compiled already: compile options %s do not apply"
                            % (os.fspath(src), ", ".join(sorted(compile_options))))
            so = os.fspath(src)
        if threads is None and sess_options is not None:
            threads = getattr(sess_options, "intra_op_num_threads", 0) or None
        super().__init__(Model(so), threads)
        # ONNX Runtime's SessionOptions.enable_profiling / profile_file_prefix
        self._profile_prefix = getattr(sess_options, "profile_file_prefix", None)
        if getattr(sess_options, "enable_profiling", False):
            self.start_profiling()

    def get_providers(self):
        return ["kiln"]

    def get_modelmeta(self):
        return self.model.info

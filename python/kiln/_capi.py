"""ctypes declarations of runtime/kiln.h and the search for libkiln.so.

The loader library is found, in this order: $KILN_LIB (a path to
libkiln.so); the installed copy (the relative path that `cmake --install`
writes into _install.py); the build tree of a source checkout
(python/kiln/../../build/libkiln.so); the dynamic linker's search path.
It is loaded on first use, so `import kiln` works without it.

ctypes releases the GIL around every call of a CDLL function (PyDLL would
keep it): kiln_run runs without the GIL, so other Python threads run while
a model does.
"""
import ctypes
import os
import threading

MAX_RANK = 8
BUSY = -2


class Tensor(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_int), ("rank", ctypes.c_int),
                ("shape", ctypes.c_int64 * MAX_RANK), ("data", ctypes.c_void_p),
                ("nbytes", ctypes.c_size_t)]


class IoInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("rank", ctypes.c_int),
                ("dims", ctypes.POINTER(ctypes.c_char_p))]


class ModelInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("kiln_version", ctypes.c_char_p),
                ("abi_version", ctypes.c_int), ("target_triple", ctypes.c_char_p),
                ("target_cpu", ctypes.c_char_p), ("cpu_features", ctypes.c_char_p),
                ("fpmath", ctypes.c_char_p), ("weights_file", ctypes.c_char_p),
                ("weights_bytes", ctypes.c_ulonglong), ("weights_hash", ctypes.c_ulonglong)]


class ProfileEvent(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("thread", ctypes.c_int), ("run", ctypes.c_int),
                ("node", ctypes.c_int), ("op", ctypes.c_char_p), ("name", ctypes.c_char_p),
                ("fused_from", ctypes.POINTER(ctypes.c_char_p)), ("nfused", ctypes.c_int),
                ("start_ns", ctypes.c_int64), ("dur_ns", ctypes.c_int64),
                ("flops", ctypes.c_double)]


PROFILE_KINDS = {0: "node", 1: "job", 2: "run"}

_P = ctypes.c_void_p
# name: (restype, argtypes)
_PROTOS = {
    "kiln_model_load": (_P, [ctypes.c_char_p]),
    "kiln_load_error": (ctypes.c_char_p, []),
    "kiln_model_free": (None, [_P]),
    "kiln_model_num_inputs": (ctypes.c_int, [_P]),
    "kiln_model_num_outputs": (ctypes.c_int, [_P]),
    "kiln_model_input": (ctypes.POINTER(IoInfo), [_P, ctypes.c_int]),
    "kiln_model_output": (ctypes.POINTER(IoInfo), [_P, ctypes.c_int]),
    "kiln_model_get_info": (ctypes.c_int, [_P, ctypes.POINTER(ModelInfo)]),
    "kiln_context_create": (_P, [_P, ctypes.c_int]),
    "kiln_context_free": (None, [_P]),
    "kiln_run": (ctypes.c_int, [_P, ctypes.POINTER(Tensor), ctypes.c_int,
                                ctypes.POINTER(Tensor), ctypes.c_int]),
    "kiln_last_error": (ctypes.c_char_p, [_P]),
    "kiln_context_arena_bytes": (ctypes.c_size_t, [_P]),
    "kiln_context_profile_start": (ctypes.c_int, [_P]),
    "kiln_context_profile_stop": (ctypes.c_int, [_P]),
    "kiln_context_profile_write": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "kiln_context_profile_count": (ctypes.c_size_t, [_P]),
    "kiln_context_profile_event": (ctypes.c_int, [_P, ctypes.c_size_t,
                                                  ctypes.POINTER(ProfileEvent)]),
}

_lock = threading.Lock()
_lib = None


def _candidates():
    env = os.environ.get("KILN_LIB")
    if env:
        return [env]          # named explicitly: no fallback that hides a typo
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    try:
        from . import _install
        out.append(os.path.normpath(os.path.join(here, _install.LIBDIR, "libkiln.so")))
    except ImportError:
        pass
    out.append(os.path.normpath(os.path.join(here, "..", "..", "build", "libkiln.so")))
    out.append("libkiln.so")
    return out


def lib():
    """The loaded libkiln.so (ctypes.CDLL), loaded on the first call."""
    global _lib
    with _lock:
        if _lib is None:
            _lib = _load()
        return _lib


def _load():
    from . import Error
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path)
            continue
        try:
            dll = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            continue
        for name, (res, args) in _PROTOS.items():
            f = getattr(dll, name)
            f.restype, f.argtypes = res, args
        return dll
    raise Error("cannot find the kiln loader library libkiln.so (tried: %s); build kiln, "
                "install it, or set KILN_LIB=/path/to/libkiln.so" % ", ".join(tried))


def text(b):
    """A C string from the library as str (None stays None)."""
    return None if b is None else b.decode("utf-8", "replace")

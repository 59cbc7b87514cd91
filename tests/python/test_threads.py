"""Sessions on threads: bit-identical results, and the GIL released while a
model runs."""
import threading
import time

import ctypes
import numpy as np

import kiln
from kiln import _capi


def feeds_for(seed, batch=2, seq=24):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 1024, (batch, seq), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, seq - 5:] = 0
    tt = np.zeros_like(ids)
    tt[:, seq // 2:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}


def test_two_sessions_on_two_threads_match_single_thread_bit_for_bit(compiled):
    m = kiln.load(compiled("bert_qa"))
    inputs = [feeds_for(s) for s in range(6)]
    ref_s = m.session(threads=2)
    want = [ref_s.run(f) for f in inputs]       # one thread, one after the other
    got = [[None] * len(inputs) for _ in range(2)]
    errors = []

    def worker(k):
        try:
            s = m.session(threads=2)
            order = range(len(inputs)) if k == 0 else reversed(range(len(inputs)))
            for _ in range(3):
                for i in order:
                    out = s.run(inputs[i])
                    if got[k][i] is not None:
                        assert all(np.array_equal(out[n], got[k][i][n]) for n in out)
                    got[k][i] = out
        except Exception as e:      # noqa: BLE001  (reported below)
            errors.append(e)
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    for k in range(2):
        for i, w in enumerate(want):
            for n in w:
                assert got[k][i][n].tobytes() == w[n].tobytes(), (k, i, n)


def test_kiln_run_is_called_without_the_gil():
    # a CDLL function: ctypes drops the GIL around the call (a PyDLL one would not)
    f = _capi.lib().kiln_run
    assert not (f._flags_ & ctypes._FUNCFLAG_PYTHONAPI)


def longest_pause(s, f, seconds):
    """Runs s on f in a thread for about `seconds` while this thread counts:
    (the longest pause between two of its steps, the time of one run, steps)."""
    t0 = time.perf_counter()
    s.run(f)
    one = time.perf_counter() - t0
    runs = max(2, int(seconds / one))
    done = threading.Event()

    def worker():
        for _ in range(runs):
            s.run(f)
        done.set()
    t = threading.Thread(target=worker)
    t.start()
    last = time.perf_counter()
    gap, n = 0.0, 0
    while not done.is_set():
        now = time.perf_counter()
        gap = max(gap, now - last)
        last = now
        n += 1
    t.join()
    return gap, one, n


def test_other_threads_run_while_a_model_runs(compiled):
    """While one thread is inside kiln_run, the main thread keeps running
    Python: the longest pause it sees is far shorter than one run (with the
    GIL held through kiln_run it would stop for a whole run, every time; a
    busy machine may pause it too, so it has three tries)."""
    m = kiln.load(compiled("bert_qa"))
    s = m.session(threads=1)
    # a batch big enough that one run takes long enough to tell (the model
    # is small: batch 16 ran in 0.017 s on a fast CPU)
    for batch in (16, 32, 64, 128, 256):
        f = feeds_for(1, batch=batch, seq=256)
        t0 = time.perf_counter()
        s.run(f)
        if time.perf_counter() - t0 > 0.06:
            break
    tries = []
    for _ in range(3):
        gap, one, n = longest_pause(s, f, 0.6)
        assert one > 0.02, "the run is too short to tell (%.3f s)" % one
        tries.append("pause %.3f s, run %.3f s, %d steps" % (gap, one, n))
        if gap < one / 2 and n > 1000:
            return
    raise AssertionError("the main thread stopped for a run: " + "; ".join(tries))


def test_one_session_in_two_threads_is_refused_not_corrupted(compiled):
    """A second thread's run on a busy session raises kiln.Error at once
    (as kiln_run's KILN_BUSY); the runs that go through are right."""
    m = kiln.load(compiled("bert_qa"))
    s = m.session(threads=1)
    f = feeds_for(2, batch=8, seq=128)
    want = s.run(f)
    stop = threading.Event()
    bad = []

    def worker():                       # keeps the session busy
        while not stop.is_set():
            out = s.run(f)
            if not all(np.array_equal(out[n], want[n]) for n in out):
                bad.append(1)
    t = threading.Thread(target=worker)
    t.start()
    refused = None
    try:
        deadline = time.monotonic() + 20
        while refused is None and time.monotonic() < deadline:
            try:
                out = s.run(f)
                if not all(np.array_equal(out[n], want[n]) for n in out):
                    bad.append(1)
            except kiln.Error as e:
                refused = str(e)
    finally:
        stop.set()
        t.join()
    assert not bad
    assert refused is not None, "a run on a busy session was never refused"
    assert "in use by another thread" in refused and "\n" not in refused

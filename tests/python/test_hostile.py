"""Unusual numpy inputs and lifetimes: every array layout gives the same
results as a plain C-ordered array, anything kiln would have to guess about
is refused with one line naming the input, and outputs outlive everything."""
import gc
import warnings

import numpy as np
import pytest

import kiln


def one_line(e):
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


def same(got, want):
    return all(np.array_equal(a, b) for a, b in zip(got, want))


def unaligned_copy(a):
    """a's values in a C-ordered view that starts one byte into its buffer."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    u = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    u[...] = a
    assert not u.flags.aligned and u.flags.c_contiguous
    return u


def layouts(a):
    """a in other memory layouts, each with a's values."""
    ro = a.copy()
    ro.setflags(write=False)
    wide = np.zeros((a.shape[0] * 2, a.shape[1] * 3) + a.shape[2:], a.dtype)
    wide[::2, ::3] = a
    yield "fortran", np.asfortranarray(a)
    yield "transposed", np.ascontiguousarray(np.swapaxes(a, 0, 1)).swapaxes(0, 1)
    yield "strided", wide[::2, ::3]
    yield "read-only", ro
    yield "unaligned", unaligned_copy(a)
    yield "masked, nothing masked", np.ma.masked_array(a, mask=np.zeros(a.shape, bool))
    if a.ndim == 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            yield "matrix", np.matrix(a)
    if a.dtype == np.int64:     # a list of floats is float64: refused (test_errors)
        yield "list", a.tolist()


@pytest.mark.parametrize("name", ["bert_qa", "vilbert"])
def test_every_layout_gives_the_same_results(compiled, models, name):
    from conftest import data_sets
    m = kiln.load(compiled(name))
    s = m.session(threads=1)
    ins, _ = data_sets(str(models / name))[0]
    feeds = {io.name: a for io, a in zip(m.inputs, ins)}
    want = s.run(None, feeds)
    for io in m.inputs:
        for label, a in layouts(feeds[io.name]):
            got = s.run(None, dict(feeds, **{io.name: a}))
            assert same(got, want), "%s input %s" % (label, io.name)


def test_masked_values_are_refused(bert_qa, qa_feeds):
    s = bert_qa.session(threads=1)
    mask = np.zeros(qa_feeds["attention_mask"].shape, bool)
    mask[1, 3] = True
    ma = np.ma.masked_array(qa_feeds["attention_mask"], mask=mask)
    with pytest.raises(kiln.Error) as e:   # used to run on the value under the mask
        s.run(None, dict(qa_feeds, attention_mask=ma))
    assert one_line(e) == ("%s: input 'attention_mask': a masked array with 1 masked value (kiln "
                           "does not read masks: pass a.filled(value))" % bert_qa.path)
    assert same(s.run(None, dict(qa_feeds, attention_mask=ma.filled(1))), s.run(None, qa_feeds))


@pytest.mark.parametrize("make, text", [
    (lambda a: a.astype(">i8"), "dtype >i8, expected tensor(int64)"),
    (lambda a: a.astype(np.int32), "dtype int32, expected tensor(int64)"),
    (lambda a: a.astype(np.uint8), "dtype uint8, expected tensor(int64)"),
    (lambda a: a.astype(np.float64), "dtype float64, expected tensor(int64)"),
    (lambda a: a.astype(bool), "dtype bool, expected tensor(int64)"),
    (lambda a: a.astype(object), "dtype object, expected tensor(int64)"),
    (lambda a: a.astype(str), "dtype <U"),
    (lambda a: np.int64(5), "rank 0 (shape []), expected 2"),
    (lambda a: 5, "rank 0 (shape []), expected 2"),
    (lambda a: None, "dtype object, expected tensor(int64)"),
])
def test_other_dtypes_are_refused_not_reinterpreted(bert_qa, qa_feeds, make, text):
    s = bert_qa.session(threads=1)
    with pytest.raises(kiln.Error) as e:
        s.run(None, dict(qa_feeds, input_ids=make(qa_feeds["input_ids"])))
    m = one_line(e)
    assert m.startswith("%s: input 'input_ids': " % bert_qa.path) and text in m, m


def test_float_inputs_of_other_widths_are_refused(compiled):
    m = kiln.load(compiled("ops_zoo"))
    s = m.session(threads=1)
    for dt in (np.float16, np.float64, ">f4"):
        with pytest.raises(kiln.Error) as e:
            s.run(None, {"x": np.zeros((1, 6), dt), "idx": np.zeros((1, 6), np.int64)})
        assert "input 'x': dtype %s, expected tensor(float)" % np.dtype(dt) in one_line(e)


def test_outputs_outlive_session_and_model(compiled, qa_feeds):
    m = kiln.load(compiled("bert_qa"))
    s = m.session(threads=1)
    out = s.run(None, qa_feeds)
    keep = [a.copy() for a in out]
    s.close()
    s.close()                  # twice: nothing happens
    m.close()
    m.close()
    del s, m
    gc.collect()
    for _ in range(3):         # the freed context's memory is reused
        m2 = kiln.load(compiled("bert_qa"))
        m2.session(threads=1).run(None, dict(qa_feeds, input_ids=qa_feeds["input_ids"] // 2))
        del m2
        gc.collect()
    assert same(out, keep)


def test_output_names_mixed_up(bert_qa, qa_feeds):
    s = bert_qa.session(threads=1)
    with pytest.raises(kiln.Error) as e:        # feeds where output names belong
        s.run(qa_feeds, qa_feeds)
    assert "is not an output of the model" in one_line(e)
    with pytest.raises(kiln.Error) as e:        # input name as an output name
        s.run(["input_ids"], qa_feeds)
    assert "'input_ids' is not an output of the model" in one_line(e)
    with pytest.raises(kiln.Error) as e:        # bytes keys are not names
        s.run(None, {k.encode(): v for k, v in qa_feeds.items()})
    assert "is not an input of the model" in one_line(e)
    got = s.run(("end_logits", "start_logits", "end_logits"), qa_feeds)
    want = s.run(None, qa_feeds)
    assert same(got, [want[1], want[0], want[1]])


def test_numpy_integer_thread_counts(bert_qa, qa_feeds):
    want = bert_qa.session(threads=1).run(None, qa_feeds)
    for t in (np.int64(2), np.int32(1), np.uint8(3)):
        assert same(bert_qa.session(threads=t).run(None, qa_feeds), want)
    for t in (np.int64(0), np.int64(257), np.bool_(True), np.float64(2.0)):
        with pytest.raises(kiln.Error) as e:
            bert_qa.session(threads=t)
        assert "threads must be a whole number from 1 to 256" in one_line(e)


def test_huge_broadcast_view_is_a_kiln_error(bert_qa):
    s = bert_qa.session(threads=1)
    a = np.broadcast_to(np.int64(1), (2**20, 2**22))      # 8 bytes standing for 32 TiB
    with pytest.raises(kiln.Error) as e:   # was numpy's MemoryError (or a 32 TiB copy)
        s.run({"input_ids": a, "attention_mask": a, "token_type_ids": a})
    assert ("input 'input_ids': shape [1048576, 4194304] (35184372088832 bytes, over the "
            "68719476736-byte tensor limit) is not contiguous") in one_line(e)
    b = np.broadcast_to(np.int64(1), (2, 9))          # small ones are copied
    assert s.run({"input_ids": b, "attention_mask": b, "token_type_ids": b})["start_logits"].shape == (2, 9)

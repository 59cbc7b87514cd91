"""The bundled models through the Python API against their numpy references."""
import numpy as np
import pytest

import kiln
from conftest import BUNDLED, close, data_sets


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_matches_reference(name, opt_level, models, compiled):
    m = kiln.load(compiled(name, opt_level))
    s = m.session(threads=2)
    sets = data_sets(str(models / name))
    assert sets
    for ins, refs in sets:
        assert len(ins) == len(m.inputs) and len(refs) == len(m.outputs)
        feeds = {io.name: x for io, x in zip(m.inputs, ins)}
        got = s.run(None, feeds)
        assert isinstance(got, list) and len(got) == len(refs)
        for io, g, r in zip(m.outputs, got, refs):
            assert g.dtype == io.dtype
            assert close(g, r), "%s %s: max |diff| %g" % (name, io.name, np.abs(g - r).max())
        # the dict form and a chosen subset in a chosen order give the same arrays
        d = s.run(feeds)
        assert list(d) == [o.name for o in m.outputs]
        for o, g in zip(m.outputs, got):
            assert np.array_equal(d[o.name], g)
        rev = [o.name for o in reversed(m.outputs)]
        for n, g in zip(rev, s.run(rev, feeds)):
            assert np.array_equal(g, d[n])


def test_inputs_outputs_and_info(bert_qa, compiled):
    m = bert_qa
    assert [i.name for i in m.inputs] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in m.outputs] == ["start_logits", "end_logits"]
    i = m.inputs[0]
    assert (i.type, i.shape, i.dtype) == ("tensor(int64)", ["batch", "sequence"], np.int64)
    assert m.outputs[0].type == "tensor(float)" and m.outputs[0].dtype == np.float32
    assert repr(i) == "NodeArg(name='input_ids', type='tensor(int64)', shape=['batch', 'sequence'])"
    info = m.info
    assert info["name"] == "bert_qa" and info["fpmath"] == "fp32"
    assert info["kiln_version"] == kiln.__version__
    assert info["weights_file"] is None and info["weights_bytes"] > 0
    assert len(info["weights_hash"]) == 16
    assert info["target_triple"].startswith("x86_64")


def test_static_dims_are_ints(compiled):
    m = kiln.load(compiled("vilbert"))
    shapes = {i.name: i.shape for i in m.inputs}
    assert any(isinstance(d, int) for s in shapes.values() for d in s), shapes
    assert any(isinstance(d, str) for s in shapes.values() for d in s), shapes


def test_version_matches_cmake():
    import os
    import re
    from conftest import SRC
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        v = re.search(r"project\(kiln VERSION ([0-9.]+)", f.read()).group(1)
    assert kiln.__version__ == v


def test_non_contiguous_inputs_give_the_same_results(bert_qa, qa_feeds):
    s = bert_qa.session(threads=1)
    want = s.run(qa_feeds)
    # Fortran order, and a strided view of a wider array
    f = {k: np.asfortranarray(v) for k, v in qa_feeds.items()}
    assert not f["input_ids"].flags.c_contiguous
    wide = {k: np.repeat(v, 2, axis=1)[:, ::2] for k, v in qa_feeds.items()}
    assert not wide["input_ids"].flags.c_contiguous
    assert np.array_equal(wide["input_ids"], qa_feeds["input_ids"])
    for feeds in (f, wide):
        got = s.run(feeds)
        for k in want:
            assert np.array_equal(got[k], want[k])
    # lists become arrays (int64 here): same results
    got = s.run({k: v.tolist() for k, v in qa_feeds.items()})
    assert np.array_equal(got["start_logits"], want["start_logits"])


def test_outputs_are_copies(bert_qa, qa_feeds):
    s = bert_qa.session(threads=1)
    a = s.run(None, qa_feeds)[0]
    keep = a.copy()
    other = dict(qa_feeds, input_ids=(qa_feeds["input_ids"] + 1) % 1024)
    b = s.run(None, other)[0]
    assert np.array_equal(a, keep) and not np.array_equal(a, b)
    assert a.flags.owndata and a.flags.writeable


def test_shapes_change_between_runs(bert_qa, qa_feeds):
    s = bert_qa.session(threads=2)
    for batch, seq in ((1, 5), (3, 33), (2, 16)):
        ids = np.arange(batch * seq, dtype=np.int64).reshape(batch, seq) % 1024
        out = s.run({"input_ids": ids, "attention_mask": np.ones_like(ids),
                     "token_type_ids": np.zeros_like(ids)})
        assert out["start_logits"].shape == (batch, seq)
        assert s.arena_bytes > 0


def test_model_closed_before_session(compiled, qa_feeds):
    m = kiln.load(compiled("bert_qa"))
    s = m.session(threads=1)
    want = s.run(None, qa_feeds)
    m.close()
    got = s.run(None, qa_feeds)          # the context keeps the model loaded
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    with pytest.raises(kiln.Error, match="closed"):
        m.session()
    s.close()
    with pytest.raises(kiln.Error, match="closed"):
        s.run(None, qa_feeds)

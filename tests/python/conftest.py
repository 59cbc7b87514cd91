"""Fixtures of the kiln Python tests (run by tests/scripts/python.sh, which
sets PYTHONPATH, KILN_LIB and KILN_CLI to the build tree's)."""
import os
import subprocess
import sys

import numpy as np
import pytest

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SHARED_MODELS = os.path.join(SRC, "..", "shared", "models")
BUNDLED = ["bert_qa", "bert_cls_dynamo", "xlnet", "vilbert", "ops_zoo"]


def load_pb(path):
    from onnx import TensorProto, numpy_helper
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def data_sets(model_dir):
    """[(inputs, outputs)] of each test_data_set_N, in graph order."""
    out = []
    for n in sorted(d for d in os.listdir(model_dir) if d.startswith("test_data_set_")):
        d = os.path.join(model_dir, n)
        def files(p):
            k, got = 0, []
            while os.path.exists(os.path.join(d, "%s_%d.pb" % (p, k))):
                got.append(load_pb(os.path.join(d, "%s_%d.pb" % (p, k))))
                k += 1
            return got
        out.append((files("input"), files("output")))
    return out


def close(got, want, atol=1e-4, rtol=1e-3):
    """kiln check's tolerance: |got - want| <= atol + rtol*|want|."""
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape)
    if got.dtype.kind in "biu":
        return np.array_equal(got, want)
    return bool(np.all(np.abs(got.astype(np.float64) - want) <= atol + rtol * np.abs(want)))


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """The bundled models (tests/gen/models.py), generated once."""
    d = tmp_path_factory.mktemp("models")
    subprocess.run([sys.executable, os.path.join(SRC, "tests", "gen", "models.py"), str(d)],
                   check=True, stdout=subprocess.DEVNULL)
    return d


@pytest.fixture(scope="session")
def compiled(models, tmp_path_factory):
    """compiled(name, opt_level=2) -> path of the model's .so, compiled once."""
    import kiln
    out = tmp_path_factory.mktemp("so")
    done = {}

    def get(name, opt_level=2):
        key = (name, opt_level)
        if key not in done:
            done[key] = kiln.compile(str(models / name / "model.onnx"),
                                     str(out / ("%s_O%d.so" % key)), opt_level=opt_level)
        return done[key]
    return get


@pytest.fixture(scope="session")
def bert_qa(compiled):
    import kiln
    return kiln.load(compiled("bert_qa"))


@pytest.fixture
def qa_feeds(models):
    ins, _ = data_sets(str(models / "bert_qa"))[0]
    return dict(zip(["input_ids", "attention_mask", "token_type_ids"], ins))

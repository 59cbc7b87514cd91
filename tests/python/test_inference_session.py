"""kiln.InferenceSession: ONNX Runtime's API, .onnx compiled into a cache."""
import os
import subprocess
import sys

import numpy as np
import pytest

import kiln
from conftest import SHARED_MODELS, close, data_sets

HERE = os.path.dirname(os.path.abspath(__file__))


def test_from_onnx_compiles_once_into_the_cache(models, tmp_path):
    src = str(models / "bert_qa" / "model.onnx")
    cache = tmp_path / "cache"
    sess = kiln.InferenceSession(src, cache_dir=str(cache))
    sos = [p for p in cache.rglob("model.so")]
    assert len(sos) == 1
    t0 = sos[0].stat().st_mtime_ns
    ins, refs = data_sets(str(models / "bert_qa"))[0]
    names = [i.name for i in sess.get_inputs()]
    assert names == ["input_ids", "attention_mask", "token_type_ids"]
    outs = sess.run(None, dict(zip(names, ins)))
    assert all(close(g, r) for g, r in zip(outs, refs))
    again = kiln.InferenceSession(src, cache_dir=str(cache))      # from the cache
    assert [p for p in cache.rglob("model.so")] == sos and sos[0].stat().st_mtime_ns == t0
    assert again.model.path == str(sos[0])
    assert not [p for p in cache.iterdir() if p.name.startswith("tmp-")]
    # other options: another entry
    kiln.InferenceSession(src, cache_dir=str(cache), opt_level=0)
    assert len(list(cache.rglob("model.so"))) == 2


def test_cache_follows_the_model_content(models, tmp_path):
    a = tmp_path / "m.onnx"
    a.write_bytes((models / "bert_qa" / "model.onnx").read_bytes())
    cache = tmp_path / "cache"
    s1 = kiln.InferenceSession(str(a), cache_dir=str(cache))
    a.write_bytes((models / "xlnet" / "model.onnx").read_bytes())
    s2 = kiln.InferenceSession(str(a), cache_dir=str(cache))
    assert s1.model.path != s2.model.path
    assert [o.name for o in s2.get_outputs()] == ["output_h", "output_g"]


def test_from_bytes_and_from_so(models, compiled, tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "env-cache"))
    data = (models / "ops_zoo" / "model.onnx").read_bytes()
    s = kiln.InferenceSession(data)
    assert (tmp_path / "env-cache").is_dir()
    ins, refs = data_sets(str(models / "ops_zoo"))[1]
    outs = s.run(None, {i.name: x for i, x in zip(s.get_inputs(), ins)})
    assert all(close(g, r) for g, r in zip(outs, refs))
    so = kiln.InferenceSession(compiled("ops_zoo"))
    assert so.model.path == compiled("ops_zoo")
    with pytest.raises(kiln.Error, match="compiled already: compile options opt_level do not apply"):
        kiln.InferenceSession(compiled("ops_zoo"), opt_level=0)


def test_session_options_threads(compiled):
    class SessionOptions:            # what onnxruntime.SessionOptions carries
        intra_op_num_threads = 3
    s = kiln.InferenceSession(compiled("bert_qa"), SessionOptions())
    assert s.threads == 3
    assert kiln.InferenceSession(compiled("bert_qa"), threads=1).threads == 1


def test_errors(tmp_path):
    with pytest.raises(kiln.Error) as e:
        kiln.InferenceSession(str(tmp_path / "absent.onnx"))
    assert "absent.onnx: No such file or directory" in str(e.value)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x0a\xff\xff\xff\xff\x0f")
    with pytest.raises(kiln.Error) as e:
        kiln.InferenceSession(str(bad), cache_dir=str(tmp_path / "c"))
    assert "bad.onnx" in str(e.value) and "\n" not in str(e.value)
    assert not list((tmp_path / "c").iterdir())       # nothing half-made left


def shared(name):
    d = os.path.join(SHARED_MODELS, name)
    if not os.path.isdir(SHARED_MODELS):
        pytest.skip("../shared/models absent")
    assert os.path.isfile(os.path.join(d, "model.onnx")), d
    return d


@pytest.mark.parametrize("name", ["bert-legacy14", "lxmert-legacy14", "bert-dynamo",
                                  "bert-qa-legacy14"])
def test_ort_style_script_on_shared_models(name):
    """tests/python/ort_style.py, written against onnxruntime's
    InferenceSession.run with the session line swapped, gets ONNX Runtime's
    reference outputs within kiln check's tolerance."""
    d = shared(name)
    r = subprocess.run([sys.executable, os.path.join(HERE, "ort_style.py"), d],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, r.stdout
    assert "outputs match" in r.stdout


def test_every_shared_model(tmp_path):
    if not os.path.isdir(SHARED_MODELS):
        pytest.skip("../shared/models absent")
    n = 0
    for name in sorted(os.listdir(SHARED_MODELS)):
        d = os.path.join(SHARED_MODELS, name)
        if not os.path.isfile(os.path.join(d, "model.onnx")):
            continue
        sess = kiln.InferenceSession(os.path.join(d, "model.onnx"), threads=2)
        for ins, refs in data_sets(d):
            outs = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), ins)})
            for o, g, r in zip(sess.get_outputs(), outs, refs):
                assert close(g, r), "%s %s: max |diff| %g" % (name, o.name, np.abs(g - r).max())
        n += 1
    assert n >= 10


def test_setup_makes_import_kiln_work(tmp_path):
    """scripts/python_dev.sh (run by the README's set-up, scripts/setup.sh)
    leaves `python3 -c "import kiln"` working for /usr/bin/python3 with no
    PYTHONPATH, from any folder."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONUSERBASE", "KILN_LIB", "KILN_CLI")}
    env["HOME"] = str(tmp_path)
    r = subprocess.run(["bash", os.path.join(os.path.dirname(HERE), "..", "scripts", "python_dev.sh")],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, r.stdout
    r = subprocess.run(["/usr/bin/python3", "-c", "import kiln; print(kiln.__file__)"], env=env,
                       cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, r.stdout
    from conftest import SRC
    assert r.stdout.strip() == os.path.join(SRC, "python", "kiln", "__init__.py")

"""Bad inputs, bad models and bad options raise kiln.Error with one line."""
import os

import numpy as np
import pytest

import kiln


def one_line(e):
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


def test_unknown_input_name(bert_qa, qa_feeds):
    s = bert_qa.session(threads=1)
    with pytest.raises(kiln.Error) as e:
        s.run(None, dict(qa_feeds, input_idz=qa_feeds["input_ids"]))
    m = one_line(e)
    assert "'input_idz' is not an input of the model" in m and "input_ids" in m


def test_missing_input(bert_qa, qa_feeds):
    s = bert_qa.session(threads=1)
    feeds = dict(qa_feeds)
    del feeds["token_type_ids"]
    with pytest.raises(kiln.Error) as e:
        s.run(None, feeds)
    assert "missing input 'token_type_ids' (int64[batch, sequence])" in one_line(e)


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.uint64, np.float64])
def test_wrong_dtype_refused(bert_qa, qa_feeds, dtype):
    s = bert_qa.session(threads=1)
    with pytest.raises(kiln.Error) as e:
        s.run(None, dict(qa_feeds, attention_mask=qa_feeds["attention_mask"].astype(dtype)))
    m = one_line(e)
    assert "input 'attention_mask': dtype %s, expected tensor(int64)" % np.dtype(dtype) in m
    assert m.startswith(bert_qa.path)


def test_float_list_is_not_cast(compiled, models):
    m = kiln.load(compiled("ops_zoo"))
    s = m.session(threads=1)
    with pytest.raises(kiln.Error) as e:   # a list of floats is float64: refused, not cast
        s.run(None, {"x": [[0.5] * 6], "idx": np.zeros((1, 6), np.int64)})
    assert "input 'x': dtype float64, expected tensor(float)" in one_line(e)


@pytest.mark.parametrize("shape", [(16,), (2, 16, 1), ()])
def test_wrong_rank(bert_qa, qa_feeds, shape):
    s = bert_qa.session(threads=1)
    with pytest.raises(kiln.Error) as e:
        s.run(None, dict(qa_feeds, input_ids=np.zeros(shape, np.int64)))
    assert "input 'input_ids': rank %d (shape %s), expected 2: int64[batch, sequence]" % (
        len(shape), list(shape)) in one_line(e)


def test_inconsistent_symbolic_dims(bert_qa, qa_feeds):
    s = bert_qa.session(threads=1)
    with pytest.raises(kiln.Error) as e:
        s.run(None, dict(qa_feeds, token_type_ids=qa_feeds["token_type_ids"][:, :7]))
    assert ("input 'token_type_ids' dim 1 (sequence) is 7, but input 'input_ids' dim 1 gives "
            "sequence = 16") in one_line(e)
    with pytest.raises(kiln.Error) as e:
        s.run(None, dict(qa_feeds, attention_mask=qa_feeds["attention_mask"][:1]))
    assert "dim 0 (batch) is 1, but input 'input_ids' dim 0 gives batch = 2" in one_line(e)


def test_wrong_static_dim(compiled, models):
    m = kiln.load(compiled("vilbert"))
    s = m.session(threads=1)
    b, r, t = 1, 3, 4
    feeds = {"input_ids": np.ones((b, t), np.int64), "attention_mask": np.ones((b, t), np.int64),
             "region_features": np.zeros((b, r, 31), np.float32),
             "boxes": np.zeros((b, r, 5), np.float32),
             "image_attention_mask": np.ones((b, r), np.int64)}
    with pytest.raises(kiln.Error) as e:
        s.run(None, feeds)
    assert "input 'region_features' dim 2: 31, expected 32" in one_line(e)
    feeds["region_features"] = np.zeros((b, r, 32), np.float32)
    assert s.run(feeds)["region_out"].shape == (b, r, 48)


def test_token_id_out_of_range(bert_qa, qa_feeds):
    s = bert_qa.session(threads=1)
    for bad in (1024, -1025, 2**40):   # -1 is valid (ONNX Gather counts from the end)
        ids = qa_feeds["input_ids"].copy()
        ids[1, 3] = bad
        with pytest.raises(kiln.Error) as e:
            s.run(None, dict(qa_feeds, input_ids=ids))
        m = one_line(e)
        assert m.startswith(bert_qa.path + ": node ") and "out of range" in m, m
    # the session still works afterwards
    assert s.run(qa_feeds)["start_logits"].shape == (2, 16)


def test_bad_output_names_and_feeds(bert_qa, qa_feeds):
    s = bert_qa.session(threads=1)
    with pytest.raises(kiln.Error) as e:
        s.run(["start_logit"], qa_feeds)
    assert "'start_logit' is not an output of the model (outputs: start_logits, end_logits)" in one_line(e)
    with pytest.raises(kiln.Error):
        s.run("start_logits", qa_feeds)
    with pytest.raises(kiln.Error) as e:
        s.run(None, [qa_feeds["input_ids"]])
    assert "run takes (output_names, {input name: array})" in one_line(e)
    with pytest.raises(kiln.Error) as e:
        s.run(None, dict(qa_feeds, input_ids=np.array(["a", "b"], dtype=object)))
    one_line(e)


@pytest.mark.parametrize("threads", [0, 257, 1.5, True, "2"])
def test_bad_thread_counts(bert_qa, threads):
    with pytest.raises(kiln.Error) as e:
        bert_qa.session(threads=threads)
    assert "threads must be a whole number from 1 to 256" in one_line(e)


def test_load_errors(tmp_path):
    with pytest.raises(kiln.Error) as e:
        kiln.load(str(tmp_path / "absent.so"))
    assert "absent.so: cannot load" in one_line(e)
    p = tmp_path / "text.so"
    p.write_text("not a model\n")
    with pytest.raises(kiln.Error) as e:
        kiln.load(str(p))
    assert "text.so: cannot load: not an ELF file" in one_line(e)


def test_load_refuses_a_cut_model(compiled, tmp_path):
    data = open(compiled("bert_qa"), "rb").read()
    p = tmp_path / "cut.so"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(kiln.Error) as e:
        kiln.load(str(p))
    assert "cut.so: truncated" in one_line(e)


def test_compile_missing_model(tmp_path):
    with pytest.raises(kiln.Error) as e:
        kiln.compile(str(tmp_path / "nope.onnx"), str(tmp_path / "x.so"))
    assert "nope.onnx: cannot open" in one_line(e) and e.value.returncode == 1


def test_compile_malformed_model(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"\x0a\xff\xff\xff\xff\x0f garbage")
    with pytest.raises(kiln.Error) as e:
        kiln.compile(str(p), str(tmp_path / "x.so"))
    assert "junk.onnx" in one_line(e) and e.value.returncode == 1
    assert not os.path.exists(tmp_path / "x.so")


def test_compile_unsupported_op(tmp_path):
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="c1")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4]),
                           helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 1, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    p = tmp_path / "conv.onnx"
    p.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    with pytest.raises(kiln.Error) as e:
        kiln.compile(str(p), str(tmp_path / "conv.so"))
    assert "unsupported ops: Conv (opset 13) x1 (node 'c1')" in one_line(e)


@pytest.mark.parametrize("opts, code, text", [
    ({"fpmath": "fp16"}, 2, "--fpmath must be fp32 or bf16, not 'fp16'"),
    ({"weights": "inline"}, 2, "--weights must be embed or external"),
    ({"name": "2bad"}, 2, "--name must be a C identifier"),
    ({"target_cpu": "no-such-cpu"}, 2, "no-such-cpu"),
    ({"opt_level": 3}, None, "opt_level must be 0, 1 or 2, not 3"),
])
def test_compile_bad_options(models, tmp_path, opts, code, text):
    with pytest.raises(kiln.Error) as e:
        kiln.compile(str(models / "bert_qa" / "model.onnx"), str(tmp_path / "x.so"), **opts)
    assert text in one_line(e) and e.value.returncode == code


def test_compile_options(models, tmp_path):
    src = str(models / "bert_qa" / "model.onnx")
    out = kiln.compile(src, str(tmp_path / "qa.so"), name="my_qa", weights="external",
                       opt_level=1)
    assert out == str(tmp_path / "qa.so")
    assert "my_qa_run(" in (tmp_path / "qa.h").read_text()
    assert (tmp_path / "qa.weights").exists()
    m = kiln.load(out)
    assert m.info["weights_file"] is not None
    st = kiln.compile(src, str(tmp_path / "st.so"), stats=True, disable_patterns=["attention"])
    assert "KlnAttention" not in st["ops_out"] and st["fpmath"] == "fp32"
    st = kiln.compile(src, str(tmp_path / "bf.so"), fpmath="bf16", stats=True)
    assert st["fpmath"] == "bf16" and st["fusions"]["attention"] == 2
    assert kiln.load(str(tmp_path / "bf.so")).info["fpmath"] == "bf16"
    kiln.compile(src, str(tmp_path / "qa.ll"), emit="llvm", opt_level=0)
    assert "define" in (tmp_path / "qa.ll").read_text()


def test_compile_more_options(models, tmp_path):
    src = str(models / "bert_cls_dynamo" / "model.onnx")
    out = kiln.compile(src, str(tmp_path / "d.so"), dim_names={"s0": "nb", "s1": "len"},
                       max_tensor_bytes="1G", target_cpu="x86-64-v3", verify_each=True)
    h = (tmp_path / "d.h").read_text()
    assert "int64_t nb" in h and "int64_t len" in h
    assert kiln.load(out).info["target_cpu"] == "x86-64-v3"
    st = kiln.compile(src, str(tmp_path / "p.so"), passes=["cleanup", "fold", "dce"], stats=True)
    assert "KlnGemm" not in st["ops_out"] and st["fusions"] == {}
    with pytest.raises(kiln.Error) as e:
        kiln.compile(src, str(tmp_path / "r.so"), runtime_lib=str(tmp_path / "none.a"))
    assert "none.a" in one_line(e)
    with pytest.raises(kiln.Error) as e:
        kiln.compile(src, str(tmp_path / "t.so"), max_tensor_bytes="lots")
    assert "--max-tensor-bytes" in one_line(e) and e.value.returncode == 2
    # max_node_operands= is --max-node-operands: the packed QKV KlnGemm
    # has 4 operands, so 3 refuses the model naming the limit, 256 compiles it
    with pytest.raises(kiln.Error) as e:
        kiln.compile(src, str(tmp_path / "n.so"), max_node_operands=3)
    assert "over the limit of 3 per node" in one_line(e) and e.value.returncode == 1
    assert kiln.compile(src, str(tmp_path / "n.so"), max_node_operands=256).endswith("n.so")


def test_dump(models):
    src = str(models / "bert_qa" / "model.onnx")
    o0, o2 = kiln.dump(src, opt_level=0), kiln.dump(src)
    assert o0.startswith("graph @bert_qa(") and "KlnAttention" not in o0 and "KlnAttention" in o2
    assert "KlnAttention" not in kiln.dump(src, disable_patterns=["attention"])
    around = kiln.dump(src, print_after="fuse-gelu")
    assert "KlnGelu" in around and len(around) > len(o2)
    assert kiln.dump(src, format="dot").startswith("digraph")
    with pytest.raises(kiln.Error) as e:
        kiln.dump(src, print_after="fuse")
    assert "unknown pass 'fuse'" in one_line(e)


@pytest.mark.parametrize("cut", ["batch", "sequence"])
def test_empty_batch_or_sequence(bert_qa, qa_feeds, cut):
    """0-sized inputs (passed to kiln_run with data NULL) run and give
    0-sized outputs; the embedding kernel refused a NULL data pointer with
    'ids must be integer [batch, seq]'."""
    s = bert_qa.session(threads=1)
    feeds = {k: (v[:0] if cut == "batch" else v[:, :0]) for k, v in qa_feeds.items()}
    shape = feeds["input_ids"].shape
    out = s.run(None, feeds)
    assert [o.shape for o in out] == [shape, shape]
    # the session still runs full inputs afterwards
    assert s.run(None, qa_feeds)[0].shape == qa_feeds["input_ids"].shape


def test_paths(models, compiled, tmp_path):
    """Paths as str, bytes or PathLike; a NUL byte (which the C side would
    cut the path at) and a wrong type raise kiln.Error; a model or output
    whose name starts with '-' is a file, not a kiln option."""
    so = compiled("bert_qa")
    assert kiln.load(os.fsencode(so)).path == so
    with pytest.raises(kiln.Error) as e:
        kiln.load(so + "\0junk")
    assert "holds a NUL byte" in one_line(e)
    with pytest.raises(kiln.Error) as e:
        kiln.load(None)
    assert "not NoneType" in one_line(e)
    os.chdir(tmp_path)
    dash = "--runtime-lib=x.a"                  # a file of that name
    with open(dash, "wb") as f:
        f.write((models / "bert_qa" / "model.onnx").read_bytes())
    assert kiln.compile(dash, "-out.so") == "-out.so"
    assert os.path.isfile("-out.so") and os.path.isfile("-out.h")
    assert kiln.dump(dash).startswith("graph @bert_qa")


def test_dim_names_cannot_add_options(models, tmp_path):
    """dim_names become one --dim-name=a=b,c=d option: ',' or '=' in a name
    would add pairs the caller did not give."""
    with pytest.raises(kiln.Error) as e:
        kiln.compile(str(models / "bert_qa" / "model.onnx"), str(tmp_path / "m.so"),
                     dim_names={"batch": "b,sequence=evil"})
    assert "dim_names: 'batch': 'b,sequence=evil' is not a dim name" in one_line(e)

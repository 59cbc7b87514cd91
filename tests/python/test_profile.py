"""The profiler through the Python API (kiln.h kiln_context_profile_*): one
"node" event per node and run with the names and ops of the model, the same
outputs with profiling on and off, the trace file, ONNX Runtime's
enable_profiling / end_profiling."""
import json
import types

import numpy as np
import pytest

import kiln


def test_profile_events_and_trace(bert_qa, qa_feeds, tmp_path):
    s = bert_qa.session(threads=2)
    plain = s.run(None, qa_feeds)
    assert s.profile_events() == []
    s.start_profiling()
    runs = [s.run(None, qa_feeds) for _ in range(3)]
    path = s.end_profiling(tmp_path / "t.json")
    for got in runs:
        for g, p in zip(got, plain):
            assert np.array_equal(g, p)
    ev = s.profile_events()
    nodes = [e for e in ev if e["kind"] == "node"]
    assert [e["run"] for e in ev if e["kind"] == "run"] == [0, 1, 2]
    assert nodes and len(nodes) % 3 == 0
    per_run = len(nodes) // 3
    # the same nodes in the same order in every run, on thread 0
    assert [e["name"] for e in nodes[:per_run]] * 3 == [e["name"] for e in nodes]
    assert {e["thread"] for e in nodes} == {0}
    assert all(e["thread"] >= 1 for e in ev if e["kind"] == "job")
    gemm = [e for e in nodes if e["op"] == "KlnGemm"]
    assert gemm and all(e["flops"] > 0 for e in gemm)
    # fused ops carry the ONNX nodes they absorbed
    assert any(e["fused_from"] for e in nodes if e["op"].startswith("Kln"))
    trace = json.load(open(path))
    tnodes = [e for e in trace if e["cat"] == "Node"]
    assert len(tnodes) == len(nodes)
    assert [e["name"] for e in tnodes] == [e["name"] + "_kernel_time" for e in nodes]
    for e in trace:
        assert {"name", "ph", "ts", "dur", "pid", "tid"} <= set(e)
    s.close()


def test_inference_session_enable_profiling(compiled, qa_feeds, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opts = types.SimpleNamespace(enable_profiling=True, profile_file_prefix="qa",
                                 intra_op_num_threads=1)
    s = kiln.InferenceSession(compiled("bert_qa"), opts)
    s.run(None, qa_feeds)
    path = s.end_profiling()
    assert path.startswith("qa_") and path.endswith(".json")
    trace = json.load(open(tmp_path / path))
    assert trace and all(e["tid"] == 0 for e in trace)      # one thread: no jobs


def test_profile_errors(bert_qa, tmp_path):
    s = bert_qa.session(threads=1)
    s.start_profiling()
    with pytest.raises(kiln.Error, match="cannot write the profile"):
        s.end_profiling(tmp_path / "no" / "t.json")
    s.close()
    with pytest.raises(kiln.Error, match="closed"):
        s.start_profiling()

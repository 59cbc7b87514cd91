"""examples/python/bert_qa.py answers from token ids: its logits are the
numpy reference's (tests/gen/models.py) for the same tokens."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import SRC, data_sets

EXAMPLE = os.path.join(SRC, "examples", "python", "bert_qa.py")


def run_example(*args):
    r = subprocess.run([sys.executable, EXAMPLE] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return r.returncode, r.stdout, r.stderr


def parse(out):
    lines = dict(ln.split(" ", 1) for ln in out.strip().splitlines() if not ln.startswith("answer"))
    span = [int(x) for x in re.search(r"^answer span \[(\d+), (\d+)\]$", out, re.M).groups()]
    return (np.array(lines["start_logits"].split(), np.float32),
            np.array(lines["end_logits"].split(), np.float32), span)


@pytest.mark.parametrize("form", ["onnx", "so"])
def test_example_answers_like_the_reference(models, compiled, form):
    (ids, mask, tt), (rstart, rend) = data_sets(str(models / "bert_qa"))[1]   # batch 1, 7 tokens
    ids = ids[0].tolist()
    # its token types are 0 for the first 3 tokens: the example's rule with
    # token 2 as the separator
    assert tt[0].tolist() == [0, 0, 0, 1, 1, 1, 1] and mask.all() and ids[2] not in ids[:2]
    model = str(models / "bert_qa" / "model.onnx") if form == "onnx" else compiled("bert_qa")
    rc, out, err = run_example(model, *ids, "--sep-id", ids[2], "--threads", 1)
    assert rc == 0, err
    start, end, span = parse(out)
    assert np.allclose(start, rstart[0], atol=1e-4, rtol=1e-3)
    assert np.allclose(end, rend[0], atol=1e-4, rtol=1e-3)
    s = int(np.argmax(rstart[0]))
    assert span == [s, s + int(np.argmax(rend[0][s:]))]
    assert "answer tokens %s" % ids[span[0]:span[1] + 1] in out


def test_example_default_question_and_errors(compiled):
    rc, out, err = run_example(compiled("bert_qa"))
    assert rc == 0 and out.startswith("tokens 12\n"), err
    rc, out, err = run_example(compiled("bert_qa"), 101, 5000, 102)
    assert rc == 1 and "out of range" in err and err.count("\n") == 1

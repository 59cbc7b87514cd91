#!/usr/bin/env python3
"""A BERT question-answering model answering from token ids, end to end in
Python: the ONNX model is compiled by kiln (once, into kiln's cache), the
question and context ids become the model's three inputs, and the answer is
the span between the argmax of the start logits and of the end logits.

    bash examples/bert_qa/gen_model.sh /tmp/qa         # the bundled model (vocabulary 1024)
    python3 examples/python/bert_qa.py /tmp/qa/bert_qa/model.onnx
    python3 examples/python/bert_qa.py MODEL.onnx|MODEL.so [TOKEN_ID...] [--sep-id N] [--threads T]

TOKEN_IDs are [CLS] question [SEP] context [SEP] as a BERT tokenizer gives
them; token types are 0 up to the first [SEP] (id 102, or --sep-id) and 1
after it; every token is attended.  Without ids it asks a fixed 12-token
question (the ids of "what is the capital ? the capital is paris ."), taken
modulo 1024 for the bundled model's vocabulary, as examples/bert_qa does.
"""
import argparse
import sys

import numpy as np

import kiln

FIXED = [101, 2054, 2003, 1996, 3007, 102, 1996, 3007, 2003, 3000, 1012, 102]


def feeds(ids, sep_id):
    """input_ids, attention_mask, token_type_ids for one sequence."""
    ids = np.asarray(ids, dtype=np.int64)[None]            # batch of 1
    first_sep = next((i for i, t in enumerate(ids[0]) if t == sep_id), ids.shape[1])
    types = (np.arange(ids.shape[1]) > first_sep).astype(np.int64)[None]
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": types}


def answer(start, end):
    """The best span [s, e] with s <= e (argmax of start, then of end from s)."""
    s = int(np.argmax(start))
    return s, s + int(np.argmax(end[s:]))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="BERT QA model: .onnx (compiled by kiln first) or a compiled .so")
    ap.add_argument("ids", nargs="*", type=int, help="token ids")
    ap.add_argument("--sep-id", type=int, default=102, help="the [SEP] token id (default 102)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    ids = a.ids or [t % 1024 for t in FIXED]
    try:
        # the only line an ONNX Runtime version changes:
        # sess = onnxruntime.InferenceSession(a.model, providers=["CPUExecutionProvider"])
        sess = kiln.InferenceSession(a.model, threads=a.threads)
        start, end = sess.run(["start_logits", "end_logits"], feeds(ids, a.sep_id))
    except kiln.Error as e:
        sys.exit("bert_qa: %s" % e)
    s, e = answer(start[0], end[0])
    print("tokens %d" % len(ids))
    print("start_logits " + " ".join("%.6f" % v for v in start[0]))
    print("end_logits " + " ".join("%.6f" % v for v in end[0]))
    print("answer span [%d, %d]" % (s, e))
    print("answer tokens %s" % ids[s:e + 1])


if __name__ == "__main__":
    main(sys.argv[1:])

"""Weights and data sets shared by the attention generators
(attn_forms.py, attn_layout_forms.py): one width-W attention layer's Q, K,
V, O projections and the feeds of its two test data sets.  Each generator
passes its own seeds, so the cases it writes stay what they were."""
import numpy as np


def params(seed, width, k_bias=True):
    """{t.w: [W, W] ~ N(0, 0.3), t.b: [W] ~ N(0, 0.1)} for t in q, k, v, o,
    drawn in that order from default_rng(seed); k_bias=False leaves k.b
    out (and does not draw it)."""
    rng = np.random.default_rng(seed)
    P = {}
    for t in ("q", "k", "v", "o"):
        P[t + ".w"] = rng.normal(0, 0.3, (width, width)).astype(np.float32)
        if t != "k" or k_bias:
            P[t + ".b"] = rng.normal(0, 0.1, width).astype(np.float32)
    return P


def feeds_sets(seed, width, mem=False, time_major=False):
    """Two data sets from default_rng(seed): 0 is batch 2, sequence 7, row 1
    left-padded (attention_mask [B, S] int64, its first 3 keys 0); 1 is
    batch 1, sequence 5, nothing padded.  x [B, S, W] ~ N(0, 1) ([S, B, W]
    when time_major); mem: also memory [B, S + 2, W], drawn after x."""
    rng = np.random.default_rng(seed)
    sets = []
    for B, S, pad in ((2, 7, 3), (1, 5, 0)):
        x = rng.normal(0, 1, (B, S, width)).astype(np.float32)
        mask = np.ones((B, S), np.int64)
        if B > 1:
            mask[1, :pad] = 0
        if time_major:
            x = np.ascontiguousarray(x.transpose(1, 0, 2))
        f = {"x": x, "attention_mask": mask}
        if mem:
            f["memory"] = rng.normal(0, 1, (B, S + 2, width)).astype(np.float32)
        sets.append(f)
    return sets


def varied_pad_sets(seed, width, time_major=False, key_bias=False):
    """Two data sets from default_rng(seed) with every batch row padded
    differently (right padding, so a causal query always sees key 0): set
    0 is batch 2, sequence 7, rows keeping 5 and 3 keys; set 1 batch 3,
    sequence 3 (batch == sequence: a [B, Sk] mask misread as [Sq, Sk]
    broadcasts without an error), rows keeping 3, 2, 1.  x ~ N(0, 1), drawn
    [S, B, W] when time_major, else [B, S, W]; key_bias: also key_bias
    [B, S] ~ N(0, 1), drawn after x."""
    rng = np.random.default_rng(seed)
    sets = []
    for B, S, keep in ((2, 7, (5, 3)), (3, 3, (3, 2, 1))):
        x = rng.normal(0, 1, (S, B, width) if time_major else (B, S, width)).astype(np.float32)
        mask = np.zeros((B, S), np.int64)
        for r, n in enumerate(keep):
            mask[r, :n] = 1
        f = {"x": x, "attention_mask": mask}
        if key_bias:
            f["key_bias"] = rng.normal(0, 1, (B, S)).astype(np.float32)
        sets.append(f)
    return sets

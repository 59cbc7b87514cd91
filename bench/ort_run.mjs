// Runs ONNX Runtime once on DIR/input_K.pb (TensorProto, as io.py writes
// them) and writes OUT/output_K.pb, for the output check of bench.sh; with
// RUNS, then times RUNS more runs on the same inputs (after 3 warm-ups) and
// prints ort_bench.mjs's JSON line (bench.sh's variable-length rows: their
// masks are not ort_bench.mjs's all-ones ones).
// usage: node ort_run.mjs MODEL.onnx DIR OUT THREADS [RUNS]
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
const ort = createRequire(import.meta.url)("onnxruntime-node");

// A minimal TensorProto codec: dims(1), data_type(2), name(8), raw_data(9).
function varint(buf, pos) {
  let v = 0n, shift = 0n;
  for (;;) {
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if (!(b & 0x80)) return [v, pos];
  }
}
function decode(buf) {
  const t = { dims: [], type: 0, name: "", raw: null };
  for (let p = 0; p < buf.length;) {
    let key; [key, p] = varint(buf, p);
    const field = Number(key >> 3n), wire = Number(key & 7n);
    if (wire === 0) { let v; [v, p] = varint(buf, p); if (field === 1) t.dims.push(Number(v)); if (field === 2) t.type = Number(v); }
    else if (wire === 2) {
      let len; [len, p] = varint(buf, p); len = Number(len);
      const body = buf.subarray(p, p + len); p += len;
      if (field === 8) t.name = body.toString();
      else if (field === 9) t.raw = body;
      else if (field === 1) for (let q = 0; q < body.length;) { let v; [v, q] = varint(body, q); t.dims.push(Number(v)); }
    } else if (wire === 5) p += 4; else if (wire === 1) p += 8;
  }
  return t;
}
function enc(v) { const out = []; let x = BigInt(v); do { let b = Number(x & 0x7fn); x >>= 7n; if (x) b |= 0x80; out.push(b); } while (x); return out; }
function encode(name, type, dims, raw) {
  const parts = [];
  for (const d of dims) parts.push(Buffer.from([0x08, ...enc(d)]));
  parts.push(Buffer.from([0x10, ...enc(type)]));
  const nb = Buffer.from(name);
  parts.push(Buffer.from([0x42, ...enc(nb.length)]), nb);
  parts.push(Buffer.from([0x4a, ...enc(raw.byteLength)]), Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength));
  return Buffer.concat(parts);
}
const TYPES = { 1: ["float32", Float32Array], 7: ["int64", BigInt64Array], 6: ["int32", Int32Array], 9: ["bool", Uint8Array] };
const CODES = { float32: 1, int64: 7, int32: 6, bool: 9 };

const [model, dir, out, threads, runs] = process.argv.slice(2);
const sess = await ort.InferenceSession.create(model, runs ?
  { intraOpNumThreads: +threads, interOpNumThreads: 1, graphOptimizationLevel: "all", executionMode: "sequential" } :
  { intraOpNumThreads: +threads, graphOptimizationLevel: "all" });
const feeds = {};
sess.inputNames.forEach((name, k) => {
  const t = decode(fs.readFileSync(path.join(dir, `input_${k}.pb`)));
  const [type, Arr] = TYPES[t.type];
  const raw = Buffer.from(t.raw);
  feeds[name] = new ort.Tensor(type, new Arr(raw.buffer, raw.byteOffset, raw.byteLength / Arr.BYTES_PER_ELEMENT), t.dims);
});
const res = await sess.run(feeds);
fs.mkdirSync(out, { recursive: true });
sess.outputNames.forEach((name, k) => {
  const r = res[name];
  fs.writeFileSync(path.join(out, `output_${k}.pb`), encode(name, CODES[r.type], r.dims, r.data));
});
if (runs) {
  for (let i = 0; i < 3; i++) await sess.run(feeds);
  const t = [];
  for (let i = 0; i < +runs; i++) {
    const t0 = process.hrtime.bigint();
    await sess.run(feeds);
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  t.sort((a, b) => a - b);
  console.log(JSON.stringify({ engine: "onnxruntime " + ort.env.versions.common, threads: +threads,
    median_ms: t[t.length >> 1], min_ms: t[0], max_ms: t[t.length - 1] }));
}

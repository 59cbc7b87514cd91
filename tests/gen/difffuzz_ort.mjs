// ONNX Runtime's side of the differential fuzzer (tests/gen/difffuzz.py):
// one node process runs many cases.  Each line of stdin names a case
// folder (case_io.py's layout); for every DIR/test_data_set_K it reads
// input_J.pb, runs the model and writes ONNX Runtime's outputs as
// output_J.pb (so `kiln check DIR` reproduces a case), or, when ONNX
// Runtime refuses the model or the inputs, DIR/test_data_set_K/ort_error
// with its message.  It prints one line per case ("done DIR") so that the
// caller can stream.
//   NODE_PATH=.../node_modules node difffuzz_ort.mjs < dirs.txt
// Graph optimizations are off: the reference should be ONNX Runtime's
// kernels, not its rewrites.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
const require = createRequire(import.meta.url);
const ort = require(process.env.NODE_PATH ? path.join(process.env.NODE_PATH, "onnxruntime-node") : "onnxruntime-node");

function varint(buf, pos) {
  let v = 0n, shift = 0n;
  for (;;) {
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if (!(b & 0x80)) return [v, pos];
  }
}
// TensorProto fields used here: dims(1), data_type(2), name(8), raw_data(9)
function decode(buf) {
  const t = { dims: [], type: 0, name: "", raw: Buffer.alloc(0) };
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
      else throw new Error(`input ${t.name}: field ${field} not supported (raw_data only)`);
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
  parts.push(Buffer.from([0x4a, ...enc(raw.byteLength)]), raw);
  return Buffer.concat(parts);
}
// ONNX data_type -> [onnxruntime-node type, typed array]
const TYPES = {
  1: ["float32", Float32Array], 2: ["uint8", Uint8Array], 3: ["int8", Int8Array],
  4: ["uint16", Uint16Array], 5: ["int16", Int16Array], 6: ["int32", Int32Array],
  7: ["int64", BigInt64Array], 9: ["bool", Uint8Array], 10: ["float16", Uint16Array],
  11: ["float64", Float64Array], 12: ["uint32", Uint32Array], 13: ["uint64", BigUint64Array],
};
const CODES = Object.fromEntries(Object.entries(TYPES).map(([c, [n]]) => [n, +c]));

function tensorOf(t) {
  const [type, Arr] = TYPES[t.type] || [];
  if (!type) throw new Error(`input ${t.name}: data_type ${t.type} not supported`);
  const raw = Buffer.from(t.raw); // aligned copy
  const data = new Arr(raw.buffer, raw.byteOffset, raw.byteLength / Arr.BYTES_PER_ELEMENT);
  return new ort.Tensor(type, type === "bool" ? Uint8Array.from(data) : data, t.dims);
}
function bytesOf(r) {
  let d = r.data;
  if (r.type === "float16" && !(d instanceof Uint16Array)) d = new Uint16Array(d.buffer, d.byteOffset, d.length);
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

async function runCase(dir) {
  let sess;
  const sets = fs.readdirSync(dir).filter((n) => n.startsWith("test_data_set_")).sort();
  try {
    sess = await ort.InferenceSession.create(path.join(dir, "model.onnx"),
      { intraOpNumThreads: 1, graphOptimizationLevel: "disabled" });
  } catch (e) {
    for (const s of sets) fs.writeFileSync(path.join(dir, s, "ort_error"), String(e.message || e).split("\n")[0] + "\n");
    return;
  }
  for (const s of sets) {
    const sd = path.join(dir, s);
    try {
      const feeds = {};
      sess.inputNames.forEach((name, k) => {
        feeds[name] = tensorOf(decode(fs.readFileSync(path.join(sd, `input_${k}.pb`))));
      });
      const res = await sess.run(feeds);
      sess.outputNames.forEach((name, k) => {
        const r = res[name];
        if (!(r.type in CODES)) throw new Error(`output ${name}: type ${r.type} not supported`);
        fs.writeFileSync(path.join(sd, `output_${k}.pb`), encode(name, CODES[r.type], r.dims, bytesOf(r)));
      });
    } catch (e) {
      fs.writeFileSync(path.join(sd, "ort_error"), String(e.message || e).split("\n")[0] + "\n");
    }
  }
  await sess.release?.();
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const dir = line.trim();
  if (!dir) continue;
  await runCase(dir);
  console.log("done " + dir);
}

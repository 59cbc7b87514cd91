// A minimal TensorProto codec (dims(1), data_type(2), name(8), raw_data(9))
// and the ONNX <-> onnxruntime-node tensor mapping, shared by bench/ort_run.mjs
// and tests/gen/difffuzz_ort.mjs.  `ort` is the caller's onnxruntime-node.
export function varint(buf, pos) {
  let v = 0n, shift = 0n;
  for (;;) {
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if (!(b & 0x80)) return [v, pos];
  }
}
// TensorProto fields used here: dims(1), data_type(2), name(8), raw_data(9)
export function decode(buf) {
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
export function encode(name, type, dims, raw) {
  const parts = [];
  for (const d of dims) parts.push(Buffer.from([0x08, ...enc(d)]));
  parts.push(Buffer.from([0x10, ...enc(type)]));
  const nb = Buffer.from(name);
  parts.push(Buffer.from([0x42, ...enc(nb.length)]), nb);
  parts.push(Buffer.from([0x4a, ...enc(raw.byteLength)]), Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength));
  return Buffer.concat(parts);
}
// ONNX data_type -> [onnxruntime-node type, typed array]
export const TYPES = {
  1: ["float32", Float32Array], 2: ["uint8", Uint8Array], 3: ["int8", Int8Array],
  4: ["uint16", Uint16Array], 5: ["int16", Int16Array], 6: ["int32", Int32Array],
  7: ["int64", BigInt64Array], 9: ["bool", Uint8Array], 10: ["float16", Uint16Array],
  11: ["float64", Float64Array], 12: ["uint32", Uint32Array], 13: ["uint64", BigUint64Array],
};
export const CODES = Object.fromEntries(Object.entries(TYPES).map(([c, [n]]) => [n, +c]));

export function tensorOf(ort, t) {
  const [type, Arr] = TYPES[t.type] || [];
  if (!type) throw new Error(`input ${t.name}: data_type ${t.type} not supported`);
  const raw = Buffer.from(t.raw); // aligned copy
  const data = new Arr(raw.buffer, raw.byteOffset, raw.byteLength / Arr.BYTES_PER_ELEMENT);
  return new ort.Tensor(type, type === "bool" ? Uint8Array.from(data) : data, t.dims);
}
export function bytesOf(r) {
  let d = r.data;
  if (r.type === "float16" && !(d instanceof Uint16Array)) d = new Uint16Array(d.buffer, d.byteOffset, d.length);
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

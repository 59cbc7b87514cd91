// Runs ONNX Runtime once on DIR/input_K.pb (TensorProto, as io.py writes
// them) and writes OUT/output_K.pb, for the output check of bench.sh; with
// RUNS, then times RUNS more runs on the same inputs (after 3 warm-ups) and
// prints ort_bench.mjs's JSON line (bench.sh's variable-length rows: their
// masks are not ort_bench.mjs's all-ones ones).
// usage: node ort_run.mjs MODEL.onnx DIR OUT THREADS [RUNS]
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { decode, encode, CODES, tensorOf } from "./tensor_pb.mjs";
const ort = createRequire(import.meta.url)("onnxruntime-node");

const [model, dir, out, threads, runs] = process.argv.slice(2);
const sess = await ort.InferenceSession.create(model, runs ?
  { intraOpNumThreads: +threads, interOpNumThreads: 1, graphOptimizationLevel: "all", executionMode: "sequential" } :
  { intraOpNumThreads: +threads, graphOptimizationLevel: "all" });
const feeds = {};
sess.inputNames.forEach((name, k) => {
  feeds[name] = tensorOf(ort, decode(fs.readFileSync(path.join(dir, `input_${k}.pb`))));
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

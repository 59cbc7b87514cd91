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
import { decode, encode, CODES, tensorOf, bytesOf } from "../../bench/tensor_pb.mjs";
const require = createRequire(import.meta.url);
const ort = require(process.env.NODE_PATH ? path.join(process.env.NODE_PATH, "onnxruntime-node") : "onnxruntime-node");

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
        feeds[name] = tensorOf(ort, decode(fs.readFileSync(path.join(sd, `input_${k}.pb`))));
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

// TensorFlow.js twin of the page's residual-MLP benchmark, on its WebGPU backend (default) or,
// with `tfjs_backend=wasm`, its WebAssembly backend (XNNPACK with SIMD; one thread, as the page
// is not cross-origin isolated), the twin of our CPU backend.
//
// Opened by bench/tfjs-compare.mjs as /tfjs/?bench=<steps>&<config>, where <config> is the same
// query string the mHC page reads (depth=24&width=64&batch=128…). It builds the page's "residual"
// variant, times <steps> AdamW training steps after 2 warm-up steps and a 1024³ matmul, and writes
// the figures as JSON into <pre data-testid="tfjs-result">. Any failure is written there as
// {"error": …} so the Node driver fails loudly instead of timing out.
/* global tf */

// The page's defaults (src/config/mod.rs) where they matter for the cost of a step, and the brief's
// optimiser settings; any of these keys in the query string overrides them. beta2 / wd change
// no work: the decay multiply is applied every step even when wd is 0.
const DEFAULTS = { depth: 24, width: 64, batch: 128, ffn: 4, lr: 0.003, wd: 0.01, beta1: 0.9, beta2: 0.999 };
const INTEGER_KEYS = ['depth', 'width', 'batch', 'ffn'];
const D_IN = 2; // the 2-D tasks (spiral, xor, circles)
const CLASSES = 2;
const RMS_EPS = 1e-6; // rms(v) = sqrt(mean(v²) + 1e-6), as src/reference.rs
const ADAM_EPS = 1e-8;
const WARMUP_STEPS = 2; // as the page's bench: shader compilation and buffer allocation happen here
const BATCH_POOL = 8; // distinct batches cycled through, made before timing (no upload in the loop)
const MATMUL_N = 1024;

function setStatus(text) {
  document.getElementById('status').textContent = text;
}

/** The benchmark settings from the query string; unknown keys (streams, task, modes…) are ignored. */
function readConfig(search) {
  const query = new URLSearchParams(search);
  const config = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS)) {
    if (!query.has(key)) continue;
    const value = Number(query.get(key));
    const ok = Number.isFinite(value) && (INTEGER_KEYS.includes(key) ? Number.isInteger(value) && value > 0 : value >= 0);
    if (!ok) throw new Error(`bad ${key}=${query.get(key)} in the query string`);
    config[key] = value;
  }
  config.steps = Number(query.get('bench') ?? 5);
  config.matmulReps = Number(query.get('matmul_reps') ?? 3);
  if (!(Number.isInteger(config.steps) && config.steps > 0)) throw new Error(`bad bench=${query.get('bench')}`);
  config.backend = query.get('tfjs_backend') ?? 'webgpu';
  if (!['webgpu', 'wasm'].includes(config.backend)) throw new Error(`bad tfjs_backend=${config.backend}`);
  return config;
}

/** Switches TF.js to WebGPU, or throws: a silent fallback to WebGL/CPU would make the figures meaningless. */
async function useWebGpu() {
  if (!navigator.gpu) throw new Error('navigator.gpu is missing: no WebGPU in this browser');
  const ok = await tf.setBackend('webgpu');
  await tf.ready();
  if (!ok || tf.getBackend() !== 'webgpu') throw new Error(`tf.setBackend('webgpu') failed: backend is ${tf.getBackend()}`);
}

/** Switches TF.js to its WebAssembly backend (the .wasm files from node_modules), or throws. */
async function useWasm() {
  tf.wasm.setWasmPaths('/node_modules/@tensorflow/tfjs-backend-wasm/dist/');
  const ok = await tf.setBackend('wasm');
  await tf.ready();
  if (!ok || tf.getBackend() !== 'wasm') throw new Error(`tf.setBackend('wasm') failed: backend is ${tf.getBackend()}`);
}

/** What the browser says about its WebGPU adapter (GPUAdapterInfo does not JSON-serialise by itself). */
async function adapterInfo() {
  const adapter = await navigator.gpu.requestAdapter();
  const info = adapter?.info;
  if (!info) return null;
  return { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description };
}

/** All trainable tensors of the residual MLP, as tf.Variables. fc2 starts small so 24+ blocks stay tame. */
function initParams({ depth, width, ffn }) {
  const hidden = ffn * width;
  return tf.tidy(() => {
    const normal = (shape, std) => tf.variable(tf.randomNormal(shape, 0, std));
    const zeros = (shape) => tf.variable(tf.zeros(shape));
    const ones = (shape) => tf.variable(tf.ones(shape));
    return {
      embedW: normal([D_IN, width], 1 / Math.sqrt(D_IN)),
      embedB: zeros([width]),
      blocks: Array.from({ length: depth }, () => ({
        normW: ones([width]),
        w1: normal([width, hidden], 1 / Math.sqrt(width)),
        b1: zeros([hidden]),
        w2: normal([hidden, width], 1 / Math.sqrt(hidden * depth)),
        b2: zeros([width]),
      })),
      finalNormW: ones([width]),
      headW: normal([width, CLASSES], 1 / Math.sqrt(width)),
      headB: zeros([CLASSES]),
    };
  });
}

function variablesOf(params) {
  const blocks = params.blocks.flatMap((b) => [b.normW, b.w1, b.b1, b.w2, b.b2]);
  return [params.embedW, params.embedB, ...blocks, params.finalNormW, params.headW, params.headB];
}

/** RMSNorm over the last axis with a learnable weight: x / sqrt(mean(x²) + eps) * w. */
function rmsNorm(x, weight) {
  return x.mul(tf.rsqrt(x.square().mean(-1, true).add(RMS_EPS))).mul(weight);
}

/** GELU, tanh approximation (the page's ACT_GELU): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x³))). */
function gelu(x) {
  const inner = x.add(x.square().mul(x).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
  return x.mul(0.5).mul(tf.tanh(inner).add(1));
}

/** Mean softmax cross-entropy of the residual MLP on one batch. */
function lossOf(params, x, yOneHot) {
  let h = tf.matMul(x, params.embedW).add(params.embedB);
  for (const block of params.blocks) {
    const u = tf.matMul(rmsNorm(h, block.normW), block.w1).add(block.b1);
    h = h.add(tf.matMul(gelu(u), block.w2).add(block.b2));
  }
  const logits = tf.matMul(rmsNorm(h, params.finalNormW), params.headW).add(params.headB);
  return tf.losses.softmaxCrossEntropy(yOneHot, logits);
}

/**
 * One AdamW step: decoupled weight decay (w ← w·(1 − lr·wd), first, as PyTorch's AdamW) on every
 * variable, then tf.train.adam's update. Returns the loss tensor (the caller awaits and disposes it).
 */
function makeTrainStep(params, { lr, wd, beta1, beta2 }) {
  const optimizer = tf.train.adam(lr, beta1, beta2, ADAM_EPS);
  const variables = variablesOf(params);
  const keep = 1 - lr * wd;
  return (x, yOneHot) => {
    tf.tidy(() => variables.forEach((v) => v.assign(v.mul(keep))));
    return optimizer.minimize(() => lossOf(params, x, yOneHot), true, variables);
  };
}

/** Random 2-D points in [-1, 1]² labelled by quadrant parity (xor): any 2-class task costs the same. */
function makeBatches(batch) {
  return Array.from({ length: BATCH_POOL }, () => {
    const xs = new Float32Array(batch * D_IN).map(() => Math.random() * 2 - 1);
    const labels = Int32Array.from({ length: batch }, (_, i) => (xs[2 * i] * xs[2 * i + 1] > 0 ? 1 : 0));
    return { x: tf.tensor2d(xs, [batch, D_IN]), y: tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES).toFloat() };
  });
}

/**
 * Mean wall time of `steps` training steps, each forced to finish by reading the loss back
 * (TF.js only submits GPU work lazily, so without the read-back we would time the JS alone).
 */
async function timeTraining(step, batches, steps) {
  let i = 0;
  const runOne = async () => {
    const { x, y } = batches[i++ % batches.length];
    const loss = step(x, y);
    const value = (await loss.data())[0];
    loss.dispose();
    return value;
  };
  const warmupLoss = [];
  for (let w = 0; w < WARMUP_STEPS; w++) warmupLoss.push(await runOne());
  // Adam's moment variables exist from the first step on, so count tensors only after warm-up.
  const tensorsBefore = tf.memory().numTensors;
  const stepMs = [];
  let lastLoss = NaN;
  const start = performance.now();
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    lastLoss = await runOne();
    stepMs.push(performance.now() - t0);
  }
  const msPerStep = (performance.now() - start) / steps;
  // A leak would mean each step allocates more, which would also slow later steps.
  const leaked = tf.memory().numTensors - tensorsBefore;
  return { ms_per_step: msPerStep, step_ms: stepMs, warmup_loss: warmupLoss, last_loss: lastLoss, leaked_tensors: leaked };
}

/** Mean wall time of a 1024×1024 @ 1024×1024 f32 matmul, read back each time, after 2 warm-ups. */
async function timeMatmul(reps) {
  const a = tf.randomNormal([MATMUL_N, MATMUL_N]);
  const b = tf.randomNormal([MATMUL_N, MATMUL_N]);
  const once = async () => {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  };
  for (let w = 0; w < 2; w++) await once();
  const start = performance.now();
  for (let r = 0; r < reps; r++) await once();
  const ms = (performance.now() - start) / reps;
  tf.dispose([a, b]);
  return ms;
}

async function run() {
  const config = readConfig(location.search);
  setStatus('starting the WebGPU backend…');
  await (config.backend === 'wasm' ? useWasm() : useWebGpu());
  const params = initParams(config);
  const batches = makeBatches(config.batch);
  const step = makeTrainStep(params, config);
  setStatus(`training: ${WARMUP_STEPS} warm-up + ${config.steps} timed steps…`);
  const training = await timeTraining(step, batches, config.steps);
  setStatus('timing the 1024³ matmul…');
  const matmulMs = config.matmulReps > 0 ? await timeMatmul(config.matmulReps) : null;
  return {
    tfjs_version: tf.version.tfjs,
    backend: tf.getBackend(),
    adapter: config.backend === 'webgpu' ? await adapterInfo() : null,
    config: { depth: config.depth, width: config.width, batch: config.batch, ffn: config.ffn, lr: config.lr,
      wd: config.wd, beta1: config.beta1, beta2: config.beta2 },
    parameters: variablesOf(params).reduce((n, v) => n + v.size, 0),
    steps: config.steps,
    ...training,
    matmul1024_ms: matmulMs,
    matmul_reps: config.matmulReps,
  };
}

/** Writes the report (or the error) where the driver waits for it. */
function publish(report) {
  const pre = document.createElement('pre');
  pre.dataset.testid = 'tfjs-result';
  pre.textContent = JSON.stringify(report);
  document.body.append(pre);
  setStatus(report.error ? 'failed' : 'done');
}

run().then(publish, (e) => publish({ error: String(e?.stack ?? e) }));

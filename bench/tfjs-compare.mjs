// Compares the page's training step (dist/, `?bench=N`) with a TensorFlow.js WebGPU twin of the
// same residual MLP (bench/tfjs/), in one headless Chromium, alternating the two every round so
// that machine noise hits both alike. See bench/README.md.
//
//   node bench/tfjs-compare.mjs [--rounds 3] [--steps 5]
//        [--config 'depth=24&width=64&streams=4&batch=128'] [--residual-only] [--tfjs-only]
//        [--matmul-reps 3] [--dist DIR] [--backend gpu|cpu]
//
// --backend cpu compares our CPU backend (`backend=cpu`) with TF.js's WebAssembly backend
// (`tfjs_backend=wasm`), both on one thread with SIMD; the 1024³ matmul is then skipped.
//
// Per-round figures go to stdout as they come; the last line is one JSON summary.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const repo = path.resolve(import.meta.dirname, '..');
const chrome = process.env.CHROMIUM || '/usr/bin/chromium';
// As tests/browser/page.test.mjs: a quiet headless Chromium with WebGPU (SwiftShader without a GPU).
const launchArgs = ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic', '--disable-dev-shm-usage', '--enable-unsafe-webgpu'];
// The page's default experiment; SwiftShader takes minutes per round at this size.
const DEFAULT_CONFIG = 'depth=24&width=64&streams=4&batch=128';
// Generous: at the default size on SwiftShader the page's bench trains 3 variants + lockstep.
const RESULT_TIMEOUT_MS = 30 * 60 * 1000;

// URL prefix -> directory; `/` (the page, served at the root as Trunk builds it) is set from --dist.
const fixedMounts = [
  ['/node_modules/', path.join(repo, 'node_modules')],
  ['/tfjs/', path.join(repo, 'bench', 'tfjs')],
];
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.svg': 'image/svg+xml', '.json': 'application/json', '.map': 'application/json' };

function readOptions() {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      steps: { type: 'string', default: '5' },
      config: { type: 'string', default: DEFAULT_CONFIG },
      'residual-only': { type: 'boolean', default: false },
      'tfjs-only': { type: 'boolean', default: false },
      'matmul-reps': { type: 'string', default: '3' },
      // Another build of the page (e.g. a copy of dist/ from an older commit) to compare against.
      dist: { type: 'string', default: path.join(repo, 'dist') },
      backend: { type: 'string', default: 'gpu' },
    },
  });
  const count = (name, min) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} wants an integer >= ${min}, got ${values[name]}`);
    return n;
  };
  return {
    rounds: count('rounds', 1),
    steps: count('steps', 1),
    matmulReps: count('matmul-reps', 0),
    config: values.config.replace(/^\?/, ''),
    residualOnly: values['residual-only'],
    tfjsOnly: values['tfjs-only'],
    dist: path.resolve(values.dist),
    backend: ['gpu', 'cpu'].includes(values.backend) ? values.backend : (() => { throw new Error(`--backend wants gpu or cpu, got ${values.backend}`); })(),
  };
}

/** Maps a request path onto a file under one of the mounts, or null (outside them, or missing). */
function fileFor(mounts, pathname) {
  const [prefix, dir] = mounts.find(([p]) => pathname.startsWith(p));
  let file = path.join(dir, path.normalize('/' + decodeURIComponent(pathname.slice(prefix.length))));
  if (file !== dir && !file.startsWith(dir + path.sep)) return null;
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
  return fs.existsSync(file) ? file : null;
}

/** A static server of `mounts` on 127.0.0.1 at a free port; resolves to { server, base }. */
async function startServer(mounts) {
  const server = http.createServer((req, res) => {
    let file = null;
    try {
      file = fileFor(mounts, new URL(req.url, 'http://x').pathname);
    } catch {
      // a malformed %-escape: treated as not found
    }
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

/** The query the page gets: the config, with `modes=residual` forced when only that is compared. */
function pageQuery(steps, config, residualOnly) {
  const query = new URLSearchParams(config);
  query.delete('bench');
  if (residualOnly) query.set('modes', 'residual');
  // URLSearchParams would escape the commas of modes=hc,mhc; the page accepts them either way.
  return `bench=${steps}&${query.toString().replaceAll('%2C', ',')}`;
}

/**
 * Opens `url` in a fresh page (its own browser context), waits for the JSON in `testId`, and
 * returns it parsed. Page errors are attached to any failure so it says why.
 */
async function benchPage(browser, url, testId) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  try {
    await page.goto(url);
    const result = page.getByTestId(testId);
    await result.waitFor({ timeout: RESULT_TIMEOUT_MS });
    const report = JSON.parse(await result.textContent());
    if (report.error) throw new Error(`${url}: ${report.error}`);
    return report;
  } catch (e) {
    e.message += errors.length ? `\npage errors: ${errors.join('\n')}` : '';
    throw e;
  } finally {
    await page.close();
  }
}

/** Our page's bench: ms per step of each variant alone, and lockstep steps/s. */
async function runOurs(browser, base, options) {
  const backend = options.backend === 'cpu' ? '&backend=cpu' : '';
  const query = `${pageQuery(options.steps, options.config, options.residualOnly)}&matmul_reps=${options.matmulReps}${backend}`;
  const report = await benchPage(browser, `${base}/?${query}`, 'bench-result');
  if (!(report.ms_per_step?.residual > 0)) throw new Error(`the page's report has no residual figure: ${JSON.stringify(report)}`);
  return report;
}

/** The TF.js twin: ms per training step of the residual MLP, and the 1024³ matmul. */
async function runTfjs(browser, base, options) {
  const backend = options.backend === 'cpu' ? '&tfjs_backend=wasm&matmul_reps=0' : `&matmul_reps=${options.matmulReps}`;
  const query = `${pageQuery(options.steps, options.config, false)}${backend}`;
  return benchPage(browser, `${base}/tfjs/?${query}`, 'tfjs-result');
}

function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const fixed = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** Fails early, with the fix, when something the run needs has not been built or installed. */
function checkPrerequisites(options) {
  const needed = [path.join(repo, 'node_modules/@tensorflow/tfjs/dist/tf.min.js'),
    path.join(repo, 'node_modules/@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js'),
    path.join(repo, 'node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js')];
  for (const file of needed) if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm ci\``);
  if (!options.tfjsOnly && !fs.existsSync(path.join(options.dist, 'index.html'))) {
    throw new Error(`${options.dist}/index.html is missing: run \`trunk build --release\` first (or pass --tfjs-only)`);
  }
}

async function main() {
  const options = readOptions();
  checkPrerequisites(options);
  const { server, base } = await startServer([...fixedMounts, ['/', options.dist]]);
  const browser = await chromium.launch({ executablePath: chrome, headless: true, args: launchArgs });
  const rounds = [];
  try {
    const version = browser.version();
    console.log(`Chromium ${version}; ${options.backend === 'cpu' ? 'CPU: ours vs TF.js wasm' : 'GPU: ours vs TF.js WebGPU'}; `
      + `config ${options.config}; ${options.steps} timed steps; ${options.rounds} rounds`
      + (options.tfjsOnly ? '; TF.js only (our page not run)' : ''));
    for (let r = 1; r <= options.rounds; r++) {
      // Ours first, then TF.js, each in a new page: alternating spreads slow spells over both.
      const ours = options.tfjsOnly ? null : await runOurs(browser, base, options);
      if (ours) {
        console.log(`round ${r}/${options.rounds} ours: residual ${fixed(ours.ms_per_step.residual)} ms/step, `
          + `all ${JSON.stringify(ours.ms_per_step)}, lockstep ${fixed(ours.steps_per_s)} steps/s, `
          + (ours.matmul1024_ms == null ? 'matmul skipped' : `matmul 1024³ ${fixed(ours.matmul1024_ms)} ms`));
      }
      const tfjs = await runTfjs(browser, base, options);
      console.log(`round ${r}/${options.rounds} tfjs: ${fixed(tfjs.ms_per_step)} ms/step `
        + `(steps ${tfjs.step_ms.map((x) => fixed(x, 1)).join(', ')}; `
        + `loss ${fixed(tfjs.warmup_loss[0], 4)} -> ${fixed(tfjs.last_loss, 4)}; leaked tensors ${tfjs.leaked_tensors}), `
        + (tfjs.matmul1024_ms == null ? 'matmul skipped' : `matmul 1024³ ${fixed(tfjs.matmul1024_ms)} ms`));
      rounds.push({ ours, tfjs });
    }
    console.log(JSON.stringify(summarise(version, options, rounds)));
  } finally {
    await browser.close();
    server.close();
  }
}

/** The one-line JSON summary: medians over rounds; the ratio is the median of per-round ratios. */
function summarise(version, options, rounds) {
  const ours = rounds.map((r) => r.ours).filter(Boolean);
  const last = rounds.at(-1);
  return {
    date: new Date().toISOString(),
    chromium: version,
    adapter: last.ours?.adapter ?? null,
    tfjs_adapter: last.tfjs.adapter,
    tfjs_version: last.tfjs.tfjs_version,
    tfjs_backend: last.tfjs.backend,
    config: options.config,
    page_config: last.ours?.config ?? null,
    steps: options.steps,
    rounds: options.rounds,
    ours_run: !options.tfjsOnly,
    ours_residual_ms: median(ours.map((o) => o.ms_per_step.residual)),
    tfjs_ms: median(rounds.map((r) => r.tfjs.ms_per_step)),
    ratio: median(rounds.filter((r) => r.ours).map((r) => r.tfjs.ms_per_step / r.ours.ms_per_step.residual)),
    tfjs_matmul1024_ms: median(rounds.map((r) => r.tfjs.matmul1024_ms)),
    ours_matmul1024_ms: median(ours.map((o) => o.matmul1024_ms)),
    matmul_ratio: median(rounds.filter((r) => r.ours?.matmul1024_ms > 0 && r.tfjs.matmul1024_ms > 0)
      .map((r) => r.tfjs.matmul1024_ms / r.ours.matmul1024_ms)),
    ours_steps_per_s: median(ours.map((o) => o.steps_per_s)),
    // The variants the page trained (alone, then together for steps_per_s).
    ours_modes: last.ours ? Object.keys(last.ours.ms_per_step) : null,
  };
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});

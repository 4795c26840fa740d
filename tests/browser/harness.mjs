// The browser tests' harness: serves the built page (dist/, from `trunk build --release`) and
// drives Debian's headless Chromium with WebGPU through SwiftShader. Test files call `useBrowser()`.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const root = path.resolve(import.meta.dirname, '../../dist');
export const artifacts = path.resolve(import.meta.dirname, '../../target/browser-artifacts');
export const chrome = process.env.CHROMIUM || '/usr/bin/chromium';
export const baseArgs = ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic', '--disable-dev-shm-usage'];
// A small experiment: SwiftShader runs the shaders on the CPU.
export const SMALL = 'depth=4&width=16&streams=2&batch=32&task=xor';

let server, base, browser;

const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.svg': 'image/svg+xml' };

/** Serves `dir` (dist/ unless another build is named) on a free local port; returns the
 * server and its base URL. */
export async function serveDist(dir = root) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const file = path.join(dir, url.pathname === '/' ? 'index.html' : path.normalize(url.pathname));
    if (!file.startsWith(dir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${server.address().port}/` };
}

/** Headless Chromium with WebGPU (through SwiftShader here). */
export function launchChromium() {
  return chromium.launch({ executablePath: chrome, headless: true, args: [...baseArgs, '--enable-unsafe-webgpu'] });
}

/** Starts the server and the browser before the file's tests and stops them after. */
export function useBrowser() {
  before(async () => {
    assert.ok(fs.existsSync(path.join(root, 'index.html')), 'dist/index.html is missing: run `trunk build --release` first');
    fs.mkdirSync(artifacts, { recursive: true });
    ({ server, base } = await serveDist());
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    server?.close();
  });
}

/** Opens the page at `?query` (in `b`, the shared browser by default; `init` runs before the
 * page's own scripts); page.errors collects errors. Every page has a storage of its own. */
export async function open(query, b = browser, init = null) {
  const page = await b.newPage({ viewport: { width: 1400, height: 1100 } });
  if (init) await page.addInitScript(init);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(base + (query ? `?${query}` : ''));
  await page.getByRole('button', { name: 'Play', exact: true }).waitFor();
  page.errors = errors;
  return page;
}

export async function stepOf(page, mode) {
  return Number(await page.getByTestId(`step-${mode}`).textContent());
}

export async function waitForSteps(page, modes, min, timeout) {
  await page.waitForFunction(({ modes, min }) => modes.every((m) => {
    const el = document.querySelector(`[data-testid="step-${m}"]`);
    return el && Number(el.textContent) >= min;
  }), { modes, min }, { timeout, polling: 250 });
}

/** Clicks `button` and saves the download it starts under artifacts; returns the path. */
export async function saveDownload(page, button) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: button, exact: true }).click()]);
  const file = path.join(artifacts, download.suggestedFilename());
  await download.saveAs(file);
  return file;
}

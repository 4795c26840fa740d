// Times the built page's `?bench=N` (dist/, from `trunk build --release`) in headless Chromium
// for one or more query strings, alternating them round by round so that machine noise hits
// each alike. Prints one JSON line per run. Usage:
//   node bench/page-bench.mjs --rounds 2 'bench=3&modes=residual&kernels=fused' 'bench=3&modes=residual&kernels=unfused'
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
let rounds = 1;
const queries = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--rounds') rounds = Number(args[++i]);
  else queries.push(args[i]);
}
const root = path.resolve(import.meta.dirname, '../dist');
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.svg': 'image/svg+xml' };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const file = path.join(root, url.pathname === '/' ? 'index.html' : path.normalize(url.pathname));
  if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) return res.writeHead(404).end();
  res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-quic', '--disable-dev-shm-usage', '--enable-unsafe-webgpu'],
});
for (let round = 0; round < rounds; round++) {
  for (const query of queries) {
    const page = await browser.newPage();
    await page.goto(`${base}?${query}`);
    const result = page.getByTestId('bench-result');
    await result.waitFor({ timeout: 30 * 60 * 1000 });
    console.log(JSON.stringify({ round: round + 1, query, ...JSON.parse(await result.textContent()) }));
    await page.close();
  }
}
await browser.close();
server.close();

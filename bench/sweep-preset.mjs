// Runs one of the page's sweep presets to the end in headless Chromium (dist/, from
// `trunk build --release`), the way a user would: click the preset, click Run sweep. Prints one
// JSON line (seconds, cells, every map's squares) and saves a picture of the panel under
// target/browser-artifacts/. Usage: node bench/sweep-preset.mjs ['Where HC breaks']
import fs from 'node:fs';
import path from 'node:path';
import { serveDist, launchChromium, artifacts } from '../tests/browser/harness.mjs';

const preset = process.argv[2] || 'Where HC breaks';
const { server, base } = await serveDist();
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  await page.goto(base);
  await page.getByTestId('gpu-status').filter({ hasText: 'GPU:' }).waitFor({ timeout: 60000 });
  await page.getByRole('button', { name: preset, exact: true }).click();
  const started = Date.now();
  await page.getByRole('button', { name: 'Run sweep', exact: true }).click();
  // Progress on stderr every 30 s: a long sweep on a software GPU shows where it is.
  const ticker = setInterval(async () => {
    const status = await page.getByTestId('sweep-status').textContent().catch(() => '');
    console.error(`${((Date.now() - started) / 1000).toFixed(0)} s: ${status}`);
  }, 30000);
  await page.getByTestId('sweep-status').filter({ hasText: 'Sweep done' }).waitFor({ timeout: 60 * 60 * 1000 });
  clearInterval(ticker);
  const seconds = (Date.now() - started) / 1000;
  const maps = {};
  for (const mode of ['residual', 'hc', 'mhc']) {
    maps[mode] = await page.getByTestId(`sweep-map-${mode}`).locator('button.sweep-cell').allTextContents();
  }
  fs.mkdirSync(artifacts, { recursive: true });
  const picture = path.join(artifacts, `sweep-${preset.toLowerCase().replaceAll(' ', '-')}.png`);
  await page.getByTestId('sweep-panel').screenshot({ path: picture });
  const url = decodeURIComponent(new URL(page.url()).search);
  console.log(JSON.stringify({ preset, seconds, url, status: await page.getByTestId('sweep-status').textContent(), maps, picture }));
} finally {
  await browser.close();
  server.close();
}

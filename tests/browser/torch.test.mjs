// The PyTorch bridge from the page: Export PyTorch downloads a project that real PyTorch runs,
// and its metrics and checkpoints come back (Import metrics draws the curves dashed over the
// live ones; Import weights loads a train.py checkpoint). Needs python3 with torch (.ci/setup).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { useBrowser, open, waitForSteps, saveDownload, artifacts } from './harness.mjs';

useBrowser();

const python = process.env.PYTHON || 'python3';
const chartPixels = (page, id) => page.evaluate((id) => document.querySelector(`[data-chart="${id}"]`).toDataURL(), id);

test('Export PyTorch runs under torch, and its metrics and weights import back', async () => {
  const query = 'depth=2&width=8&streams=2&batch=16&task=circles&backend=cpu';
  const page = await open(query);
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await waitForSteps(page, ['residual', 'hc', 'mhc'], 5, 60000);
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.getByText('Export', { exact: true }).click();
  const zip = await saveDownload(page, 'PyTorch (.zip)');
  await page.getByTestId('message').filter({ hasText: 'PyTorch project downloaded (7 files)' }).waitFor({ timeout: 10000 });

  // The downloaded project trains under torch and saves checkpoints.
  const dir = path.join(artifacts, 'pytorch-export');
  fs.rmSync(dir, { recursive: true, force: true });
  execFileSync(python, ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; z.extractall(sys.argv[2])', zip, dir]);
  const experiment = JSON.parse(fs.readFileSync(path.join(dir, 'experiment.json'), 'utf8'));
  assert.equal(experiment.config.depth, '2');
  assert.equal(experiment.config.task, 'circles');
  const metrics = path.join(dir, 'metrics.jsonl');
  execFileSync(python, [path.join(dir, 'train.py'), '--steps', '30', '--device', 'cpu', '--metrics', metrics, '--save', path.join(dir, 'run')], { stdio: 'pipe' });
  const rows = fs.readFileSync(metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.length, 3 * 4, 'steps 0, 10, 20 and 29 of three variants');

  // Import metrics: the curves are drawn over the live ones, and can be removed again.
  const before = await chartPixels(page, 'loss');
  await page.getByLabel('Import metrics').setInputFiles(metrics);
  await page.getByTestId('message').filter({ hasText: 'Drawn dashed over the live curves: 12 rows of residual, hc, mhc from metrics.jsonl, steps 0 to 29' }).waitFor({ timeout: 10000 });
  await page.waitForTimeout(300);
  assert.notEqual(await chartPixels(page, 'loss'), before, 'the imported loss curves are drawn');
  await page.locator('.charts').screenshot({ path: path.join(artifacts, 'pytorch-overlay.png') });
  await page.getByRole('button', { name: 'Remove imported curves', exact: true }).click();
  await page.waitForTimeout(300);
  assert.equal(await chartPixels(page, 'loss'), before, 'removing them restores the chart');

  // A broken metrics file: one clear message, the chart untouched.
  const broken = path.join(dir, 'broken.jsonl');
  fs.writeFileSync(broken, '{"step": 0, "mode": "hc", "loss": 0.5}\n{"step": 1, "mode": "hc", "loss": NaN}\n');
  await page.getByLabel('Import metrics').setInputFiles(broken);
  await page.getByTestId('message').filter({ hasText: 'import failed: broken.jsonl, line 2: not JSON' }).waitFor({ timeout: 10000 });
  assert.equal(await chartPixels(page, 'loss'), before);

  // Import weights takes train.py's checkpoint, and training goes on from it.
  await page.getByLabel('Import weights').setInputFiles(path.join(dir, 'run.mhc.safetensors'));
  await page.getByTestId('message').filter({ hasText: 'loaded mhc weights from run.mhc.safetensors' }).waitFor({ timeout: 10000 });
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await waitForSteps(page, ['mhc'], 10, 60000);
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  assert.deepEqual(page.errors, []);
  await page.close();
});

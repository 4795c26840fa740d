// Browser tests of the Sweep panel and of what the page teaches: a sweep from a shared link and
// from the panel, its maps, exports, pause / resume / cancel, a cell opening as a run; every
// control's accessible name and explanation; chart hover readouts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useBrowser, open, waitForSteps, saveDownload, artifacts, SMALL } from './harness.mjs';

useBrowser();

// Four cells of ten steps: tiny enough for SwiftShader.
const TINY = 'task=xor&width=8&batch=8&ffn=2';
const SHARED = `${TINY}&sweep_x=depth:1,2&sweep_y=streams:1,2&sweep_steps=10`;

const gpuReady = (page) => page.getByTestId('gpu-status').filter({ hasText: 'GPU:' }).waitFor({ timeout: 30000 });
const sweepStatus = (page) => page.getByTestId('sweep-status');

test('a shared sweep link opens ready, runs to the end, draws its maps, exports and opens a cell', async () => {
  const page = await open(SHARED);
  await gpuReady(page);
  assert.equal(await page.getByLabel('Sweep x key').inputValue(), 'depth');
  assert.equal(await page.getByLabel('Sweep x values').inputValue(), '1,2');
  assert.equal(await page.getByLabel('Sweep y key').inputValue(), 'streams');
  assert.equal(await page.getByLabel('Sweep y values').inputValue(), '1,2');
  assert.equal(await page.getByLabel('Steps per cell').inputValue(), '10');
  assert.equal(await page.getByTestId('config-notice').count(), 0, 'a clean sweep link shows no notice');
  // The address bar keeps the sweep.
  await page.waitForFunction(() => location.search.includes('sweep_x=depth:1,2'), null, { timeout: 5000 });
  assert.match(decodeURIComponent(page.url()), /sweep_y=streams:1,2&sweep_steps=10/);

  const started = Date.now();
  await page.getByRole('button', { name: 'Run sweep' }).click();
  await sweepStatus(page).filter({ hasText: 'Sweep done' }).waitFor({ timeout: 300000 });
  console.log(`2 x 2 sweep of 10 steps: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.match(await page.getByTestId('message').textContent(), /Sweep done: 4 cells/);
  for (const mode of ['residual', 'hc', 'mhc']) {
    const cells = page.getByTestId(`sweep-map-${mode}`).locator('button.sweep-cell');
    assert.equal(await cells.count(), 4, mode);
    for (const text of await cells.allTextContents()) {
      assert.match(text, /^(\d+\.\d+|\d\.\d+e-?\d+|diverged)$/, `${mode}: ${text}`);
    }
  }
  // mHC's forward gain is 1 in every cell; HC with one stream is a residual network.
  for (const text of await page.getByTestId('sweep-map-mhc').locator('button.sweep-cell').allTextContents()) {
    assert.ok(Math.abs(Number(text) - 1) < 1e-3, `mHC gain ${text}`);
  }
  // Hover (and focus) gives the whole story of a cell.
  const hcCorner = page.getByTestId('sweep-map-hc').locator('button.sweep-cell').nth(3);
  await hcCorner.hover();
  const hover = await page.getByTestId('sweep-hover').textContent();
  assert.match(hover, /^HC at depth=2, streams=2: survived 10 steps; max gain forward [\d.]+/, hover);
  // Another quantity on the same maps.
  await page.getByLabel('Sweep map quantity').selectOption('diverged');
  assert.equal(await page.getByTestId('sweep-map-mhc').locator('button.sweep-cell', { hasText: 'survived' }).count(), 4);
  await page.getByLabel('Sweep map quantity').selectOption('gain_fwd');
  await page.screenshot({ path: path.join(artifacts, 'sweep-shared.png'), fullPage: true });

  const csv = fs.readFileSync(await saveDownload(page, 'Sweep CSV'), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'depth,streams,mode,final_loss,final_test_loss,final_test_acc,max_gain_fwd,max_gain_bwd,diverged_at,diverged_block,seconds,cell');
  assert.equal(csv.length, 13, 'four cells, three variants');
  assert.match(csv[12], /^2,2,mhc,[\d.]+,[\d.]+,[\d.]+,/);
  const jsonl = fs.readFileSync(await saveDownload(page, 'Sweep JSON'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(jsonl.length, 12);
  assert.deepEqual([jsonl[4].depth, jsonl[4].streams, jsonl[4].mode], [2, 1, 'hc']);

  // A cell opens as a normal run of that experiment.
  await hcCorner.click();
  await page.getByTestId('message').filter({ hasText: 'Opened the cell depth=2, streams=2' }).waitFor({ timeout: 5000 });
  assert.equal(await page.getByLabel('Depth', { exact: true }).inputValue(), '2');
  assert.equal(await page.getByLabel('Streams', { exact: true }).inputValue(), '2');
  await page.waitForFunction(() => !location.search.includes('sweep_x') && location.search.includes('depth=2'), null, { timeout: 5000 });
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await waitForSteps(page, ['residual', 'hc', 'mhc'], 3, 60000);
  assert.doesNotMatch(await page.locator('main').textContent(), /NaN/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a sweep from the panel pauses, resumes and cancels; a bad value is refused', async () => {
  const page = await open(TINY);
  await gpuReady(page);
  await page.getByLabel('Sweep x key').selectOption('lr');
  await page.getByLabel('Sweep x values').fill('0.001,abc');
  await page.getByLabel('Sweep x values').press('Enter');
  await page.getByRole('button', { name: 'Run sweep' }).click();
  await page.getByTestId('message').filter({ hasText: 'cannot run this sweep: lr=abc: not a number' }).waitFor({ timeout: 5000 });

  await page.getByLabel('Sweep x values').fill('0.001,0.01,0.1');
  await page.getByLabel('Sweep x values').press('Enter');
  await page.getByLabel('Steps per cell').fill('400');
  await page.getByLabel('Steps per cell').press('Enter');
  await page.waitForFunction(() => location.search.includes('sweep_x=lr:0.001,0.01,0.1&sweep_steps=400'), null, { timeout: 5000 });
  await page.getByRole('button', { name: 'Run sweep' }).click();
  await sweepStatus(page).filter({ hasText: /running · cell 1 of 3 · about/ }).waitFor({ timeout: 60000 });
  // The page stays responsive while the sweep runs: a click on a control is answered at once.
  const clickStart = Date.now();
  await page.getByRole('button', { name: 'What Depth does' }).click();
  await page.locator('[data-help="depth"]').waitFor({ state: 'visible', timeout: 2000 });
  console.log(`a click during a sweep answered in ${Date.now() - clickStart} ms`);

  await page.getByRole('button', { name: 'Pause sweep' }).click();
  // 'pausing' until the step already sent to the GPU has finished and counted; then nothing runs.
  await sweepStatus(page).filter({ hasText: 'paused' }).waitFor({ timeout: 30000 });
  const progress = () => page.getByLabel('Sweep progress').evaluate((p) => p.value);
  await page.waitForTimeout(500);
  const held = await progress();
  await page.waitForTimeout(2000);
  assert.equal(await progress(), held, 'no steps while paused');
  await page.getByRole('button', { name: 'Resume sweep' }).click();
  await page.waitForFunction((held) => document.querySelector('progress').value > held, held, { timeout: 60000 });
  await page.getByRole('button', { name: 'Cancel sweep' }).click();
  await sweepStatus(page).filter({ hasText: 'cancelled' }).waitFor({ timeout: 5000 });
  const after = await progress();
  await page.waitForTimeout(1500);
  assert.equal(await progress(), after, 'nothing runs after cancel');
  assert.equal(await page.getByRole('button', { name: 'Run sweep' }).isEnabled(), true);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('every control has an accessible name and an explanation; charts read out the value under the pointer', async () => {
  const page = await open(SMALL);
  const controls = page.locator('main .control');
  const count = await controls.count();
  assert.ok(count >= 25, `${count} controls`);
  for (let i = 0; i < count; i++) {
    const control = controls.nth(i);
    const input = control.locator('input, select, [role=group]').first();
    const name = await input.getAttribute('aria-label');
    assert.ok(name && name.length > 1, `control ${i} has an accessible name`);
    const described = await input.getAttribute('aria-describedby');
    const help = await page.locator(`[id="${described}"]`).textContent();
    assert.ok(help.length > 30 && help.endsWith('.'), `${name}: ${help}`);
    assert.equal(await control.getAttribute('title'), help, `${name}: the explanation on hover too`);
  }
  // Reachable by keyboard: Tab to the "?" of Depth and press Enter.
  const helpButton = page.getByRole('button', { name: 'What Depth does' });
  await helpButton.focus();
  await page.keyboard.press('Enter');
  assert.equal(await helpButton.getAttribute('aria-expanded'), 'true');
  assert.match(await page.locator('[data-help="depth"]').textContent(), /composite gain grows with depth/);

  await page.getByTestId('gpu-status').filter({ hasText: 'GPU:' }).waitFor({ timeout: 30000 });
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await waitForSteps(page, ['residual', 'hc', 'mhc'], 12, 120000);
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  // The headline card shows the backward gain too; H_pre and H_post sit beside H_res.
  for (const mode of ['residual', 'hc', 'mhc']) {
    assert.match(await page.getByTestId(`gain-bwd-${mode}`).textContent(), /^\d/);
  }
  assert.match(await page.locator('canvas[data-chart="h-pre-post"]').getAttribute('aria-label'), /H_pre .* H_post/);
  await page.getByLabel('Heatmap variant').selectOption('mhc');
  assert.match(await page.getByTestId('ds-caption').textContent(), /over every example of the batch and every block/);
  // Hover over the middle of the loss chart: its readout names each line's value there.
  const chart = page.locator('canvas[data-chart="loss"]');
  const box = await chart.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForFunction(() => document.querySelector('canvas[data-chart="loss"]').getAttribute('data-hover'), null, { timeout: 5000 });
  const readout = await chart.getAttribute('data-hover');
  assert.match(readout, /Residual @\d+: \d+\.\d+; HC @\d+: \d+\.\d+; mHC @\d+: \d+\.\d+/, readout);
  assert.deepEqual(page.errors, []);
  await page.close();
});

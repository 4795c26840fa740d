// Browser tests of the story without a GPU: plain words when WebGPU is missing, the bare link
// scaled to a CPU-sized story that shows HC's gain past 10 within a minute, the question before
// a heavy explicit link trains on the CPU, the faster backend picked over a software GPU, the
// user's override, and the CPU bench. Run: node --test tests/browser/ (after `trunk build --release`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { useBrowser, open, stepOf, waitForSteps, chrome, baseArgs, SMALL } from './harness.mjs';

useBrowser();

/** Headless Chromium with WebGPU switched off, as on a machine whose browser blocks the GPU. */
const withoutWebGpu = () => chromium.launch({ executablePath: chrome, headless: true, args: [...baseArgs, '--disable-webgpu'] });

/** Collects main-thread tasks over 50 ms (Long Tasks API) from the page's start. */
const watchLongTasks = () => {
  window.__long = [];
  new PerformanceObserver((list) => list.getEntries().forEach((e) => window.__long.push([Math.round(e.startTime), Math.round(e.duration)]))).observe({ type: 'longtask', buffered: true });
};

const gain = async (page, mode) => Number(await page.getByTestId(`gain-${mode}`).textContent());

test('without WebGPU the bare link says so plainly and tells the story on the CPU within a minute', async () => {
  const plain = await withoutWebGpu();
  try {
    const page = await open('', plain, watchLongTasks);
    const status = page.getByTestId('gpu-status');
    await status.filter({ hasText: 'cannot use your GPU' }).waitFor({ timeout: 30000 });
    // The headline is for people; the browser's reason waits behind a disclosure.
    const headline = await status.locator('p').first().innerText();
    assert.match(headline, /train on your CPU/);
    assert.match(headline, /Chrome or Edge/);
    assert.doesNotMatch(headline, /adapter|compiled|navigator/i);
    assert.equal(await page.getByTestId('gpu-detail').isVisible(), false);
    await status.getByText('Technical detail').click();
    assert.match(await page.getByTestId('gpu-detail').innerText(), /WebGPU|adapter/);

    const started = Date.now();
    const played = Math.round(await page.evaluate(() => performance.now()));
    await page.getByRole('button', { name: 'Play', exact: true }).click();
    const scaled = page.getByTestId('cpu-scaled');
    await scaled.waitFor({ timeout: 30000 });
    assert.match(await scaled.innerText(), /depth 24 → 16, width 64 → 32, batch 128 → 64/);
    const full = await scaled.getByRole('link', { name: 'Open the full experiment' }).getAttribute('href');
    assert.match(full, /^\?v=1/);
    assert.match(await page.getByTestId('backend-status').innerText(), /Training on: CPU .*no usable WebGPU/);
    await waitForSteps(page, ['mhc'], 2, 30000);
    const training = await page.evaluate(() => performance.now());
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="gain-hc"]')?.textContent) > 10, null, { timeout: 60000, polling: 100 });
    const seconds = (Date.now() - started) / 1000;
    const [hc, mhc] = [await gain(page, 'hc'), await gain(page, 'mhc')];
    console.log(`no WebGPU, bare link: HC gain ${hc} after ${seconds.toFixed(1)} s; mHC ${mhc}`);
    assert.ok(seconds < 60, `${seconds} s`);
    assert.equal(await page.getByTestId('gain-mhc').textContent(), '1.0000');
    // Training in slices: no main-thread task of 50 ms or more once training runs (building
    // the trainers at Play may take one; the log shows them).
    await waitForSteps(page, ['mhc'], 60, 60000);
    const long = await page.evaluate(() => window.__long);
    console.log(`long tasks [start ms, duration ms] (Play at ${played}, training from ${Math.round(training)}): ${JSON.stringify(long)}`);
    const whileTraining = long.filter(([start]) => start > training);
    assert.deepEqual(whileTraining, [], 'long tasks while training');

    // The full experiment's link is honoured as given: it asks first, with an estimate.
    await page.getByRole('button', { name: 'Pause', exact: true }).click();
    await page.goto(new URL(full, page.url()).href);
    await page.getByRole('button', { name: 'Play', exact: true }).click();
    const question = page.getByTestId('cpu-question');
    await question.waitFor({ timeout: 30000 });
    const asked = await question.innerText();
    console.log(`full experiment on the CPU: ${asked}`);
    assert.match(asked, /about \d+(\.\d)? (ms|s) per step, \d+ (s|min|h) for 2000 steps/);
    assert.equal(await page.getByTestId('step-hc').textContent(), '0', 'nothing trains before the answer');
    await question.getByRole('button', { name: 'Train it on the CPU' }).click();
    await waitForSteps(page, ['residual', 'hc', 'mhc'], 2, 60000);
    assert.equal(await page.getByTestId('cpu-scaled').count(), 0);
    assert.deepEqual(page.errors, []);
  } finally {
    await plain.close();
  }
});

test('a heavy shared link can be swapped for its CPU-sized version', async () => {
  const plain = await withoutWebGpu();
  try {
    const page = await open('depth=32&width=96&streams=4&lr=0.005', plain);
    await page.getByRole('button', { name: 'Play', exact: true }).click();
    const question = page.getByTestId('cpu-question');
    await question.waitFor({ timeout: 30000 });
    await question.getByRole('button', { name: 'Use the CPU-sized version' }).click();
    assert.match(await page.getByTestId('cpu-scaled').innerText(), /depth 32 → 16, width 96 → 32, batch 128 → 64/);
    // The rest of the link is kept.
    await page.waitForFunction(() => location.search.includes('depth=16') && location.search.includes('lr=0.005'), null, { timeout: 5000 });
    await page.getByRole('button', { name: 'Play', exact: true }).click();
    await waitForSteps(page, ['residual', 'hc', 'mhc'], 3, 60000);
    assert.deepEqual(page.errors, []);
  } finally {
    await plain.close();
  }
});

test('a heavy link already at the CPU size trains without a question', async () => {
  const plain = await withoutWebGpu();
  try {
    // The small transformer is CPU-sized; an 8x slower CPU makes its step heavy on any machine.
    const page = await open('task=text&depth=2&width=32&ctx=32&batch=16&heads=4', plain);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 8 });
    await page.getByRole('button', { name: 'Play', exact: true }).click();
    await waitForSteps(page, ['residual', 'hc', 'mhc'], 1, 90000);
    assert.equal(await page.getByTestId('cpu-question').count(), 0, 'no question offering the same experiment');
    assert.deepEqual(page.errors, []);
  } finally {
    await plain.close();
  }
});

test('over a software GPU the faster backend is timed and picked, and the user can override it', async () => {
  const page = await open(SMALL);
  await page.getByTestId('gpu-status').filter({ hasText: 'software GPU' }).waitFor({ timeout: 30000 });
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  const status = page.getByTestId('backend-status');
  await status.filter({ hasText: 'Training on' }).waitFor({ timeout: 120000 });
  const why = await status.innerText();
  console.log(`auto: ${why}`);
  const [, cpuMs, gpuMs] = why.match(/a step took (\d+) ms on the CPU and (\d+) ms on the software GPU/).map(Number);
  assert.match(why, Number(cpuMs) < Number(gpuMs) ? /Training on: CPU/ : /Training on: GPU/);
  await waitForSteps(page, ['residual', 'hc', 'mhc'], 3, 120000);
  // The override: the GPU, as chosen, from the next Play.
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.waitForTimeout(500);
  const before = await stepOf(page, 'mhc');
  await page.getByTestId('backend-choice').selectOption('gpu');
  // The run moves with its weights and charts: nothing is lost.
  await page.getByTestId('message').filter({ hasText: /The run moved to the GPU at step \d+/ }).waitFor({ timeout: 60000 });
  assert.equal(await stepOf(page, 'mhc'), before, 'the charts stay');
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await status.filter({ hasText: /Training on: GPU, .*as chosen/ }).waitFor({ timeout: 60000 });
  await waitForSteps(page, ['residual', 'hc', 'mhc'], before + 2, 180000);
  // `backend=cpu` in the link chooses the CPU from the start.
  const chosen = await open(`backend=cpu&${SMALL}`);
  assert.equal(await chosen.getByTestId('backend-choice').inputValue(), 'cpu');
  await chosen.getByRole('button', { name: 'Play', exact: true }).click();
  await chosen.getByTestId('backend-status').filter({ hasText: /Training on: CPU .*as chosen/ }).waitFor({ timeout: 30000 });
  assert.deepEqual([...page.errors, ...chosen.errors], []);
});

test('?bench=N&backend=cpu times the CPU backend at the full default, at least one lockstep step a second', async () => {
  const page = await open('bench=3&backend=cpu');
  const result = page.getByTestId('bench-result');
  await result.waitFor({ timeout: 120000 });
  const report = JSON.parse(await result.textContent());
  console.log(`CPU bench: ${JSON.stringify(report)}`);
  assert.equal(report.backend, 'cpu');
  assert.equal(report.kernels, 'fast');
  assert.equal(report.config, 'v=1&seed=1');
  assert.ok(report.steps_per_s >= 1, `${report.steps_per_s} lockstep steps/s`);
  for (const m of ['residual', 'hc', 'mhc']) assert.ok(report.ms_per_step[m] > 0, JSON.stringify(report));
});

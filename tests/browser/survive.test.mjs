// Browser tests of runs that survive: a reload offers to resume the same experiment from the
// saved step (and goes on from there), another experiment starts fresh, and storage that is
// disabled costs one notice while training goes on, and a lost GPU device is replaced (or the
// CPU takes over) from the last save.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, open, stepOf, waitForSteps } from './harness.mjs';

useBrowser();

// Ten classes and big batches: the loss falls steadily from about ln 10, well above batch noise.
const RUN = 'task=teacher&depth=2&width=16&streams=2&batch=64&lr=0.01';
const gpuReady = (page) => page.getByTestId('gpu-status').filter({ hasText: 'GPU:' }).waitFor({ timeout: 30000 });
const lossOf = async (page, mode) => Number((await page.getByTestId(`loss-${mode}`).textContent()));

test('a reload offers to resume at the saved step and goes on from there; another experiment starts fresh', async () => {
  const page = await open(RUN);
  await gpuReady(page);
  assert.equal(await page.getByTestId('resume-offer').count(), 0, 'nothing saved yet');
  // One step first: the loss at step 0.
  await page.getByRole('button', { name: 'Step', exact: true }).click();
  await page.getByTestId('loss-mhc').filter({ hasText: /\d/ }).waitFor({ timeout: 60000 });
  const initialLoss = await lossOf(page, 'mhc');
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await waitForSteps(page, ['residual', 'hc', 'mhc'], 60, 120000);
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  const savedLine = page.getByTestId('saved-step').filter({ hasText: /saved at step \d+/ });
  await savedLine.waitFor({ timeout: 15000 });
  await page.waitForTimeout(1000);
  const saved = Number((await savedLine.textContent()).match(/\d+/)[0]);
  const trainedLoss = await lossOf(page, 'mhc');
  assert.ok(saved >= 60, `saved at step ${saved}`);

  await page.reload();
  await gpuReady(page);
  const offer = page.getByTestId('resume-offer');
  await offer.waitFor({ timeout: 15000 });
  assert.match(await offer.textContent(), new RegExp(`saved at step ${saved}`));
  await page.getByRole('button', { name: `Resume from step ${saved}` }).click();
  await page.getByTestId('message').filter({ hasText: `Resumed from step ${saved}` }).waitFor({ timeout: 60000 });
  assert.equal(await stepOf(page, 'mhc'), saved - 1, 'the charts come back up to the last step trained');
  // The resumed run trains where a fresh one would (over SwiftShader: the timed pick), and says so.
  assert.match(await page.getByTestId('backend-status').innerText(), /Training on: (CPU|GPU).*software GPU/);
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await waitForSteps(page, ['residual', 'hc', 'mhc'], saved + 5, 120000);
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  // Going on from the saved weights: the loss is where training left it, not where it began.
  const resumedLoss = await lossOf(page, 'mhc');
  console.log(`saved at step ${saved}: mHC loss ${initialLoss} at the start, ${trainedLoss} when saved, ${resumedLoss} after resuming`);
  assert.ok(Math.abs(resumedLoss - trainedLoss) < Math.abs(initialLoss - trainedLoss), `${initialLoss} -> ${trainedLoss} -> ${resumedLoss}`);

  // Another experiment in the same browser storage: no offer, a fresh start.
  await page.goto(page.url().replace('depth=2', 'depth=3'));
  await gpuReady(page);
  await page.waitForTimeout(2000);
  assert.equal(await page.getByTestId('resume-offer').count(), 0);
  assert.equal(await stepOf(page, 'mhc'), 0);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('storage that is disabled gives one notice and training goes on', async () => {
  const denied = () => {
    Object.defineProperty(navigator.storage, 'getDirectory', { value: () => Promise.reject(new DOMException('storage is disabled', 'SecurityError')) });
  };
  const page = await open(RUN, undefined, denied);
  await gpuReady(page);
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  const notice = page.getByTestId('config-notice').filter({ hasText: 'cannot be saved' });
  await notice.waitFor({ timeout: 60000 });
  assert.match(await notice.textContent(), /SecurityError: storage is disabled.*training goes on/);
  const at = await stepOf(page, 'mhc');
  await waitForSteps(page, ['residual', 'hc', 'mhc'], at + 10, 120000);
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  assert.equal(await page.getByTestId('config-notice').count(), 1, 'one notice');
  assert.equal(await page.getByTestId('saved-step').textContent(), '');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('storage that is full gives one notice and training goes on', async () => {
  // Every write to the private file system fails as a full quota does.
  const full = () => {
    FileSystemWritableFileStream.prototype.write = () => Promise.reject(new DOMException('the quota is used up', 'QuotaExceededError'));
  };
  const page = await open(RUN, undefined, full);
  await gpuReady(page);
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  const notice = page.getByTestId('config-notice').filter({ hasText: 'cannot be saved' });
  await notice.waitFor({ timeout: 60000 });
  assert.match(await notice.textContent(), /QuotaExceededError: the quota is used up.*training goes on/);
  const at = await stepOf(page, 'mhc');
  // Saves keep failing every 5 s; still one notice, and training goes on.
  await page.waitForTimeout(6000);
  await waitForSteps(page, ['residual', 'hc', 'mhc'], at + 10, 120000);
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  assert.equal(await page.getByTestId('config-notice').count(), 1, 'one notice');
  assert.equal(await page.getByTestId('saved-step').textContent(), '');
  assert.deepEqual(page.errors, []);
  await page.close();
});

// The test holds on to every device the page opens, so it can destroy one; `__noAdapters()`
// makes the browser find no adapter from then on.
const capture = () => {
  const request = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await request.apply(this, args);
    (window.__devices ||= []).push(device);
    return device;
  };
  window.__noAdapters = () => { navigator.gpu.requestAdapter = async () => null; };
};

/** Trains on the GPU for `steps` steps and past a save at step 10 or later, runs `lose` in the
 * page, waits for the message `resumed` and returns the page and the step it resumed from. */
async function loseTheDeviceAfterASave(steps, lose, resumed, label) {
  const page = await open(`backend=gpu&${RUN}`, undefined, capture);
  await gpuReady(page);
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await waitForSteps(page, ['residual', 'hc', 'mhc'], steps, 120000);
  // A save after some training (saves come every 5 s), so the resume has something to keep.
  await page.waitForFunction(() => Number((document.querySelector('[data-testid="saved-step"]').textContent.match(/\d+/) || [0])[0]) >= 10, null, { timeout: 60000, polling: 200 });
  await page.evaluate(lose);
  const message = page.getByTestId('message').filter({ hasText: resumed });
  await message.waitFor({ timeout: 60000 });
  const text = await message.textContent();
  console.log(`${label}: ${text}`);
  const from = Number(text.match(/from step (\d+)/)[1]);
  assert.ok(from >= 10, text);
  return { page, from };
}

test('a lost GPU device is reopened and the run goes on from the last save', async () => {
  const { page, from } = await loseTheDeviceAfterASave(20, () => window.__devices.at(-1).destroy(),
    /lost .*Resumed on a new GPU device .* from step \d+/, 'device destroyed');
  await waitForSteps(page, ['residual', 'hc', 'mhc'], from + 5, 120000);
  assert.equal(await page.evaluate(() => window.__devices.length), 2, 'a second device was opened');
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.close();
});

test('a lost GPU device with no adapter coming back goes on from the last save on the CPU', async () => {
  const { page, from } = await loseTheDeviceAfterASave(12, () => { window.__noAdapters(); window.__devices.at(-1).destroy(); },
    /lost .*Resumed on the CPU, as no GPU came back from step \d+/, 'device destroyed, no adapter');
  assert.match(await page.getByTestId('backend-status').innerText(), /Training on: CPU .*the GPU was lost and none came back/);
  await waitForSteps(page, ['residual', 'hc', 'mhc'], from + 10, 60000);
  assert.equal(await page.evaluate(() => window.__devices.length), 1, 'no second device');
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.close();
});

test('running out of GPU memory names the sizes and a smaller experiment, and that one trains', async () => {
  const page = await open(`backend=gpu&${RUN}`, undefined, capture);
  await gpuReady(page);
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await waitForSteps(page, ['residual', 'hc', 'mhc'], 3, 120000);
  // What a device reports when a buffer found no memory.
  await page.evaluate(() => window.__devices.at(-1).dispatchEvent(
    new GPUUncapturedErrorEvent('uncapturederror', { error: new GPUOutOfMemoryError('out of memory (test)') })));
  const message = page.getByTestId('message').filter({ hasText: 'ran out of memory' });
  await message.waitFor({ timeout: 30000 });
  const text = await message.textContent();
  console.log(`out of memory: ${text}`);
  assert.match(text, /\(residual [\d.]+ MB, hc [\d.]+ MB, mhc [\d.]+ MB\)\. Try a smaller one: batch=32, or fewer variants\./);
  await page.getByRole('button', { name: 'Play', exact: true }).waitFor({ timeout: 5000 });
  await page.getByLabel('Batch size', { exact: true }).fill('32');
  await page.getByLabel('Batch size', { exact: true }).press('Enter');
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await waitForSteps(page, ['residual', 'hc', 'mhc'], 3, 120000);
  assert.equal(await page.evaluate(() => window.__devices.length), 2, 'a fresh device after the failure');
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  assert.deepEqual(page.errors, []);
  await page.close();
});

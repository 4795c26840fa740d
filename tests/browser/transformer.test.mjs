// The transformer on the page (DESIGN.md section 1b): a text link trains all three variants with
// per-sublayer gains, the architecture control says so, and what the page cannot do yet for a
// transformer (the PyTorch export) says so in one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, open, waitForSteps, stepOf } from './harness.mjs';

useBrowser();

test('a text link trains a small transformer for every variant', async () => {
  const page = await open('task=text&depth=1&width=16&ctx=16&batch=4&heads=2&streams=2&backend=cpu');
  assert.equal(await page.getByLabel('Architecture', { exact: true }).inputValue(), 'transformer');
  assert.equal(await page.getByLabel('Task', { exact: true }).inputValue(), 'text');
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await waitForSteps(page, ['residual', 'hc', 'mhc'], 12, 120000);
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.waitForTimeout(500);
  const gain = async (mode) => Number(await page.getByTestId(`gain-${mode}`).textContent());
  assert.equal(await gain('residual'), 1);
  assert.ok(Math.abs(await gain('mhc') - 1) < 1e-3, `mHC ${await gain('mhc')}`);
  assert.ok(await gain('hc') > 1, `HC ${await gain('hc')}`);
  assert.ok(await stepOf(page, 'mhc') >= 12);
  await page.getByText('Export', { exact: true }).click();
  await page.getByRole('button', { name: 'PyTorch (.zip)', exact: true }).click();
  await page.getByTestId('message').filter({ hasText: "export failed: the PyTorch export covers the MLP experiments" }).waitFor({ timeout: 10000 });
  assert.deepEqual(page.errors, []);
  await page.close();
});

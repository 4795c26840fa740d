// The transformer on the page (DESIGN.md section 1b): a text link trains all three variants with
// per-sublayer gains, the architecture control says so, and it exports to PyTorch; each variant's
// writing, answers and attention; a text of the user's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, open, waitForSteps, stepOf, saveDownload } from './harness.mjs';

useBrowser();

test('a text link trains a small transformer for every variant', async () => {
  const page = await open('task=text&depth=1&width=16&ctx=16&batch=4&heads=2&streams=2&backend=cpu');
  assert.equal(await page.getByLabel('Architecture', { exact: true }).inputValue(), 'transformer');
  assert.equal(await page.getByLabel('Task', { exact: true }).inputValue(), 'text');
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await waitForSteps(page, ['residual', 'hc', 'mhc'], 12, 120000);
  // HC's gain leaves 1.0000 within a few steps; how far past step 12 the shown metrics are
  // depends on how many steps a slice ran, so wait for it while training (one CI run saw 1).
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="gain-hc"]')?.textContent) > 1, null, { timeout: 60000, polling: 100 });
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.waitForTimeout(500);
  const gain = async (mode) => Number(await page.getByTestId(`gain-${mode}`).textContent());
  assert.equal(await gain('residual'), 1);
  assert.ok(Math.abs(await gain('mhc') - 1) < 1e-3, `mHC ${await gain('mhc')}`);
  assert.ok(await gain('hc') > 1, `HC ${await gain('hc')}`);
  assert.ok(await stepOf(page, 'mhc') >= 12);
  // The transformer exports to PyTorch too (tests/export_torch.rs runs such a project).
  await page.getByText('Export', { exact: true }).click();
  await saveDownload(page, 'PyTorch (.zip)');
  await page.getByTestId('message').filter({ hasText: 'PyTorch project downloaded (7 files)' }).waitFor({ timeout: 10000 });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('each variant writes after the same prompt, and its attention is drawn', async () => {
  const page = await open('task=text&depth=2&width=16&ctx=16&batch=4&heads=2&streams=2&backend=cpu');
  await page.getByTestId('reading-empty').waitFor();
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await waitForSteps(page, ['residual', 'hc', 'mhc'], 8, 120000);
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  const written = async (mode) => (await page.getByTestId(`written-${mode}`).textContent());
  await page.getByTestId('written-mhc').waitFor({ timeout: 30000 });
  const prompt = await page.getByLabel('Prompt', { exact: true }).inputValue();
  assert.equal(prompt.length, 8, `half the context: ${prompt}`);
  for (const mode of ['residual', 'hc', 'mhc']) {
    const text = await written(mode);
    assert.ok(text.startsWith(prompt), `${mode}: ${text}`);
    assert.equal(text.length, prompt.length + 120, `${mode} writes 120 characters`);
  }
  // Greedy: the caption says so, and the text is read again at temperature 0.
  await page.getByLabel('Temperature', { exact: true }).fill('0');
  await page.getByTestId('temperature').filter({ hasText: '0 (greedy)' }).waitFor();
  await page.locator('.reading .caption').filter({ hasText: 'at temperature 0.00' }).waitFor({ timeout: 30000 });
  // A prompt of the user's own; one with no character of the alphabet is refused in words.
  await page.getByLabel('Prompt', { exact: true }).fill('Quid est');
  await page.getByLabel('Prompt', { exact: true }).press('Enter');
  await page.locator('.reading .caption').filter({ hasText: '“Quid est”' }).waitFor({ timeout: 30000 });
  assert.ok((await written('hc')).startsWith('Quid est'));
  await page.getByLabel('Prompt', { exact: true }).fill('€€€');
  await page.getByLabel('Prompt', { exact: true }).press('Enter');
  await page.getByTestId('reading-problem').filter({ hasText: 'no character of the text' }).waitFor({ timeout: 30000 });
  // The attention of block 1, head 1 of every variant.
  await page.getByLabel('Attention block', { exact: true }).fill('1');
  await page.getByLabel('Attention head', { exact: true }).fill('1');
  for (const mode of ['residual', 'hc', 'mhc']) {
    const label = await page.locator(`canvas[data-chart="attention-${mode}"]`).getAttribute('aria-label');
    assert.match(label, /attention, block 1 head 1$/);
  }
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('each variant answers a test example of an algorithmic task', async () => {
  // On the GPU backend: the weights come back from the device to the CPU sampler.
  const page = await open('task=reverse&depth=1&width=16&ctx=8&batch=8&heads=2&streams=2&backend=gpu');
  await page.getByRole('button', { name: 'Step', exact: true }).click();
  const caption = page.locator('.reading .caption').filter({ hasText: 'Test example #1' });
  await caption.waitFor({ timeout: 30000 });
  const text = await caption.textContent();
  const [, question, answer] = text.match(/#1: (\d+)\| → right answer (\d+)\./);
  assert.equal(answer, [...question].reverse().join(''));
  for (const mode of ['residual', 'hc', 'mhc']) {
    const written = await page.getByTestId(`written-${mode}`).textContent();
    assert.match(written, new RegExp(`^${question}\\|[0-9|+=.]{${answer.length}}$`), `${mode}: ${written}`);
  }
  await page.getByTestId('next-example').click();
  await page.locator('.reading .caption').filter({ hasText: 'Test example #2' }).waitFor({ timeout: 30000 });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a pasted text trains, its hash is in the link, and a link to a text this browser lacks says so', async () => {
  const page = await open('task=text&depth=1&width=16&ctx=8&batch=4&heads=2&streams=2&backend=cpu');
  assert.match(await page.getByTestId('text-status').textContent(), /De finibus/);
  await page.getByText('More settings').click();
  await page.getByText('Paste your own text').click();
  const box = page.getByLabel('Your own text', { exact: true });
  await box.fill('too short');
  await page.getByRole('button', { name: 'Train on this text', exact: true }).click();
  await page.getByTestId('message').filter({ hasText: 'needs at least 3000' }).waitFor();
  const text = Array.from({ length: 400 }, (_, i) => `the cat sat on mat ${i % 10} `).join('');
  await box.fill(text);
  await page.getByRole('button', { name: 'Train on this text', exact: true }).click();
  await page.getByTestId('text-status').filter({ hasText: `your text: ${text.length} characters, 20 different` }).waitFor();
  const status = await page.getByTestId('text-status').textContent();
  const id = status.match(/text=(\d+)/)[1];
  await page.waitForFunction((id) => location.search.includes(`text=${id}`), id);
  await page.getByRole('button', { name: 'Step', exact: true }).click();
  await page.locator('.reading .caption').filter({ hasText: 'Step 1.' }).waitFor({ timeout: 30000 });
  // The default prompt comes from the pasted text's test split, and so does the writing.
  const prompt = await page.getByLabel('Prompt', { exact: true }).inputValue();
  assert.ok(text.includes(prompt), prompt);
  for (const mode of ['residual', 'hc', 'mhc']) {
    assert.match(await page.getByTestId(`written-${mode}`).textContent(), /^[the casonm0-9]+$/);
  }
  // A reload finds the text in this browser's storage.
  await page.reload();
  await page.getByTestId('text-status').filter({ hasText: `text=${id}` }).waitFor({ state: 'attached' });
  assert.match(await page.getByTestId('text-status').textContent(), /^your text/);
  assert.deepEqual(page.errors, []);
  await page.close();
  // Another browser (no such text stored): the link says so, and Play explains what to do.
  const stranger = await open(`task=text&depth=1&width=16&ctx=8&batch=4&heads=2&text=${id}&backend=cpu`);
  await stranger.getByTestId('config-notice').filter({ hasText: `text=${id}: this link trains on a text of its own` }).waitFor();
  await stranger.getByRole('button', { name: 'Play', exact: true }).click();
  await stranger.getByTestId('message').filter({ hasText: 'paste that text again, or set text=0' }).waitFor({ timeout: 10000 });
  assert.deepEqual(stranger.errors, []);
  await stranger.close();
});

// Times the built page's `?bench=N` (dist/, from `trunk build --release`) in headless Chromium
// for one or more query strings, alternating them round by round so that machine noise hits
// each alike. Prints one JSON line per run. Usage:
//   node bench/page-bench.mjs --rounds 2 'bench=3&modes=residual&kernels=fused' 'bench=3&modes=residual&kernels=unfused'
// Each line also has `browser_cpu_s`: the CPU seconds (user + system) the browser's processes
// spent on that run, page load and shader compilation included. On a shared machine whose wall
// times swing 2x between runs this barely moves; the difference between a `bench=1` and a
// `bench=N` run of the same build is N - 1 rounds of steps' own work. `--dist DIR` serves
// another build of the page (a copy of dist/ from another commit) instead of dist/: to compare
// builds, alternate runs with and without it.
//
// With `--play SECONDS` a query is a plain link instead: the page is opened as a user would,
// Play is pressed, and once training has begun (after the auto backend's timing) the steps
// every variant has taken in SECONDS give `lockstep_steps_per_s`, with the backend line the
// page shows. That is what a user watches, charts and readbacks included.
//   node bench/page-bench.mjs --play 30 'task=text&depth=2&width=32&ctx=32&batch=16&heads=4'
import fs from 'node:fs';
import path from 'node:path';
import { serveDist, launchChromium, root } from '../tests/browser/harness.mjs';

/** CPU seconds so far of this process's live descendants (the browser), from /proc. */
function browserCpuSeconds() {
  const children = new Map();
  const ticks = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // After "pid (comm) ": state, ppid, ... utime and stime are the 12th and 13th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(entry);
    ticks.set(pid, Number(fields[11]) + Number(fields[12]));
    const ppid = Number(fields[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(pid);
  }
  let total = 0;
  const stack = [...(children.get(process.pid) ?? [])];
  while (stack.length) {
    const pid = stack.pop();
    total += ticks.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total / 100; // USER_HZ
}

const args = process.argv.slice(2);
let rounds = 1;
let playSeconds = null;
let dist = root;
const queries = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--rounds') rounds = Number(args[++i]);
  else if (args[i] === '--play') playSeconds = Number(args[++i]);
  else if (args[i] === '--dist') dist = path.resolve(args[++i]);
  else queries.push(args[i]);
}
if (!fs.existsSync(path.join(dist, 'index.html'))) throw new Error(`${dist}/index.html is missing: run \`trunk build --release\` first`);

/** In the page: the fewest steps any variant shown has taken, as a lockstep step moves every
 * one. A variant that diverges stops there, and this count with it, so time links where none
 * diverges. */
const fewestSteps = () => Math.min(...[...document.querySelectorAll('[data-testid^="step-"]')]
  .map((el) => Number(el.textContent)).filter((n) => Number.isFinite(n)));
const lockstepSteps = (page) => page.evaluate(fewestSteps);

/** Presses Play on the opened link and times the steps of `seconds` of training. */
async function play(page, seconds) {
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  const status = page.getByTestId('backend-status').filter({ hasText: 'Training on' });
  await status.waitFor({ timeout: 10 * 60 * 1000 });
  // A link heavy for the CPU asks first; this user wants the experiment as linked.
  const question = page.getByTestId('cpu-question');
  const asked = await question.waitFor({ timeout: 2000 }).then(() => true, () => false);
  if (asked) await question.getByRole('button', { name: 'Train it on the CPU' }).click();
  // Truthy once every variant has taken a step.
  await page.waitForFunction(fewestSteps, null, { timeout: 10 * 60 * 1000, polling: 100 });
  const [first, start] = [await lockstepSteps(page), Date.now()];
  await page.waitForTimeout(seconds * 1000);
  const [last, end] = [await lockstepSteps(page), Date.now()];
  return {
    backend: await status.innerText(),
    cpu_question: asked,
    lockstep_steps: last - first,
    seconds: (end - start) / 1000,
    lockstep_steps_per_s: Math.round(((last - first) / ((end - start) / 1000)) * 1000) / 1000,
  };
}
const { server, base } = await serveDist(dist);
const browser = await launchChromium();
for (let round = 0; round < rounds; round++) {
  for (const query of queries) {
    const cpuBefore = browserCpuSeconds();
    const page = await browser.newPage();
    await page.goto(`${base}?${query}`);
    let measured;
    if (playSeconds !== null) {
      measured = await play(page, playSeconds);
    } else {
      const result = page.getByTestId('bench-result');
      await result.waitFor({ timeout: 30 * 60 * 1000 });
      measured = JSON.parse(await result.textContent());
    }
    const browser_cpu_s = Math.round((browserCpuSeconds() - cpuBefore) * 100) / 100;
    console.log(JSON.stringify({ round: round + 1, query, browser_cpu_s, ...measured }));
    await page.close();
  }
}
await browser.close();
server.close();

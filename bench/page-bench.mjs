// Times the built page's `?bench=N` (dist/, from `trunk build --release`) in headless Chromium
// for one or more query strings, alternating them round by round so that machine noise hits
// each alike. Prints one JSON line per run. Usage:
//   node bench/page-bench.mjs --rounds 2 'bench=3&modes=residual&kernels=fused' 'bench=3&modes=residual&kernels=unfused'
// Each line also has `browser_cpu_s`: the CPU seconds (user + system) the browser's processes
// spent on that run, page load and shader compilation included. On a shared machine whose wall
// times swing 2x between runs this barely moves; the difference between a `bench=1` and a
// `bench=N` run of the same build is N - 1 rounds of steps' own work.
import fs from 'node:fs';
import { serveDist, launchChromium } from '../tests/browser/harness.mjs';

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
const queries = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--rounds') rounds = Number(args[++i]);
  else queries.push(args[i]);
}
const { server, base } = await serveDist();
const browser = await launchChromium();
for (let round = 0; round < rounds; round++) {
  for (const query of queries) {
    const cpuBefore = browserCpuSeconds();
    const page = await browser.newPage();
    await page.goto(`${base}?${query}`);
    const result = page.getByTestId('bench-result');
    await result.waitFor({ timeout: 30 * 60 * 1000 });
    const browser_cpu_s = Math.round((browserCpuSeconds() - cpuBefore) * 100) / 100;
    console.log(JSON.stringify({ round: round + 1, query, browser_cpu_s, ...JSON.parse(await result.textContent()) }));
    await page.close();
  }
}
await browser.close();
server.close();

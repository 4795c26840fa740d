// Times the built page's `?bench=N` (dist/, from `trunk build --release`) in headless Chromium
// for one or more query strings, alternating them round by round so that machine noise hits
// each alike. Prints one JSON line per run. Usage:
//   node bench/page-bench.mjs --rounds 2 'bench=3&modes=residual&kernels=fused' 'bench=3&modes=residual&kernels=unfused'
import { serveDist, launchChromium } from '../tests/browser/harness.mjs';

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

// What one yield to the browser costs in headless Chromium: `setTimeout(0)` (clamped to 4 ms
// once timers nest five deep) against a message the page posts to itself (driver::yield_now),
// alone and after 15 ms of busy work, as the page's CPU slices yield. Prints one JSON line of
// milliseconds per yield. Usage: node bench/yield-cost.mjs
import { launchChromium } from '../tests/browser/harness.mjs';

const browser = await launchChromium();
const page = await browser.newPage();
await page.goto('about:blank');
const result = await page.evaluate(async () => {
  const channel = new MessageChannel();
  const waiting = [];
  channel.port1.onmessage = () => waiting.shift()();
  const byTimer = () => new Promise((resolve) => setTimeout(resolve, 0));
  const byMessage = () => new Promise((resolve) => { waiting.push(resolve); channel.port2.postMessage(null); });
  const busy = (ms) => { const start = performance.now(); while (performance.now() - start < ms); };
  const perYield = async (yieldOnce, count, workMs) => {
    const start = performance.now();
    for (let i = 0; i < count; i++) {
      if (workMs) busy(workMs);
      await yieldOnce();
    }
    return (performance.now() - start) / count - workMs;
  };
  return {
    timer_ms: await perYield(byTimer, 200, 0),
    message_ms: await perYield(byMessage, 200, 0),
    timer_after_15ms_work_ms: await perYield(byTimer, 50, 15),
    message_after_15ms_work_ms: await perYield(byMessage, 50, 15),
  };
});
console.log(JSON.stringify(result));
await browser.close();

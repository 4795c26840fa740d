// What drawing three 32 x 32 decision surfaces costs in headless Chromium's canvas, the way
// charts.rs once drew them (a colour string and a fillRect per cell) against the way it draws
// them now (the cells as pixels of a small canvas, scaled up by one drawImage). Each figure
// includes the canvas's flush (a getImageData). Prints one JSON line of milliseconds (median of 5).
// Usage: node bench/surface-cost.mjs
import { launchChromium } from '../tests/browser/harness.mjs';

const browser = await launchChromium();
const page = await browser.newPage();
await page.setContent('<canvas id="c" width="660" height="660"></canvas>');
const result = await page.evaluate(() => {
  const ctx = document.getElementById('c').getContext('2d');
  const grid = 32;
  const side = 220;
  const cell = side / grid;
  const colour = (p) => [Math.round(40 + p * 215), Math.round(90 + p * 165), 255];
  const probs = Array.from({ length: 3 }, (_, k) => Array.from({ length: grid * grid }, (_, i) => (Math.sin(i * 0.37 + k) + 1) / 2));
  const perCell = () => probs.forEach((surface, k) => {
    surface.forEach((p, i) => {
      const [r, g, b] = colour(p);
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.globalAlpha = 0.75;
      ctx.fillRect(k * side + (i % grid) * cell, Math.floor(i / grid) * cell, cell + 0.5, cell + 0.5);
    });
    ctx.globalAlpha = 1;
  });
  const oneImage = () => probs.forEach((surface, k) => {
    const small = document.createElement('canvas');
    small.width = grid;
    small.height = grid;
    const pixels = new Uint8ClampedArray(surface.flatMap((p) => [...colour(p), 191]));
    small.getContext('2d').putImageData(new ImageData(pixels, grid, grid), 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, k * side, 0, side, side);
  });
  const time = (draw) => {
    const runs = [];
    for (let i = 0; i < 5; i++) {
      ctx.clearRect(0, 0, 660, 660);
      const start = performance.now();
      draw();
      ctx.getImageData(0, 0, 1, 1);
      runs.push(performance.now() - start);
    }
    return runs.sort((a, b) => a - b)[2];
  };
  return { per_cell_ms: time(perCell), one_image_ms: time(oneImage) };
});
console.log(JSON.stringify(result));
await browser.close();

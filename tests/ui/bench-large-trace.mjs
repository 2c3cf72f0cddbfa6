// Large-trace benchmark of the web UI: a 50,000-span trace in a real `clew serve`, opened in headless Chromium.
// Measures the time to first render of the trace page and the frame times while scrolling the timeline.
//
//   node tests/ui/bench-large-trace.mjs [--spans 50000] [--frames 300]
import { loadavg } from 'node:os';
import { launchBrowser } from './lib/browser.mjs';
import { largeTraceRequests } from './lib/largeTrace.mjs';
import { sendOtlp, startClew } from './lib/server.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SPANS = arg('spans', 50_000);
const FRAMES = arg('frames', 300);
const RUNS = arg('runs', 3);
const TRACE_ID = 'be1c0000000000000000000000000001';

const pct = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const ms = (v) => `${v.toFixed(1)} ms`;

const server = await startClew();
let browser;
try {
  const { requests, spanCount, maxDepth } = largeTraceRequests(TRACE_ID, SPANS);
  for (const req of requests) await sendOtlp(server, req);
  let t = performance.now();
  const body = await (await fetch(`${server.queryUrl}/api/v1/traces/${TRACE_ID}`)).text();
  const apiMs = performance.now() - t;
  console.log(`trace: ${spanCount} spans, depth ${maxDepth}, ${(body.length / 1e6).toFixed(1)} MB of OTLP JSON, API fetch ${ms(apiMs)}`);

  browser = await launchBrowser();
  const firstRender = [];
  const frames = [];
  const fetchInPage = [];
  const buildMs = [];
  let toggleMs = 0;
  for (let run = 0; run < RUNS; run++) {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(120_000);
    t = performance.now();
    await page.goto(`${server.queryUrl}/trace/${TRACE_ID}`);
    await page.getByTestId('span-count').filter({ hasText: `${spanCount} spans` }).waitFor();
    await page.locator('[role=treeitem]').nth(10).waitFor();
    firstRender.push(performance.now() - t);
    // Of that, the download of the trace JSON (browser's resource timing); the rest is parsing and rendering.
    // The UI's own marks: request → response parsed → trace model built (the rest is React rendering).
    const marks = await page.evaluate(() =>
      Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name, m.startTime])),
    );
    buildMs.push(marks['clew:trace-built'] - marks['clew:trace-received']);
    fetchInPage.push(
      await page.evaluate(() => {
        const e = performance.getEntriesByType('resource').find((r) => /\/api\/v1\/traces\/[0-9a-f]+$/.test(r.name));
        return e ? e.responseEnd - e.startTime : NaN;
      }),
    );
    const rendered = await page.locator('[role=treeitem]').count();
    if (rendered > 200) throw new Error(`virtualisation is off: ${rendered} rows in the DOM`);

    // Scroll the timeline 72 px (3 rows) per animation frame and record every frame's duration.
    const deltas = await page.evaluate(async (n) => {
      const el = document.querySelector('[data-testid=waterfall]');
      const out = [];
      let last = performance.now();
      for (let i = 0; i < n; i++) {
        el.scrollTop += 72;
        await new Promise((r) => requestAnimationFrame(r));
        const now = performance.now();
        out.push(now - last);
        last = now;
      }
      // Then jump far (the minimap's job) a few times.
      for (let i = 0; i < 20; i++) {
        el.scrollTop = Math.random() * el.scrollHeight;
        await new Promise((r) => requestAnimationFrame(r));
        const now = performance.now();
        out.push(now - last);
        last = now;
      }
      return out;
    }, FRAMES);
    frames.push(...deltas);

    // Collapsing the root hides 49,999 rows; expanding brings them back.
    await page.locator('[data-testid=waterfall]').evaluate((el) => (el.scrollTop = 0));
    const root = page.locator('[data-span-id="0000000000000001"]');
    t = performance.now();
    await root.getByRole('button', { name: 'collapse' }).click();
    await root.getByRole('button', { name: 'expand' }).click();
    await page.locator('[role=treeitem]').nth(10).waitFor();
    toggleMs = Math.max(toggleMs, performance.now() - t);
    await context.close();
  }
  const result = {
    spans: spanCount,
    runs: RUNS,
    firstRenderMs: { best: Math.min(...firstRender), median: pct(firstRender, 50), worst: Math.max(...firstRender) },
    scrollFrameMs: { frames: frames.length, p50: pct(frames, 50), p99: pct(frames, 99), max: Math.max(...frames) },
    collapseExpandRootMs: toggleMs,
    apiFetchMs: apiMs,
    traceDownloadInPageMs: pct(fetchInPage, 50),
    modelBuildMs: pct(buildMs, 50),
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(`
| what | value |
|---|---|
| spans in the trace | ${spanCount} |
| time to first render (navigation → rows on screen), median of ${RUNS} | ${ms(result.firstRenderMs.median)} (best ${ms(result.firstRenderMs.best)}) |
| scroll frame time p50 / p99 (${frames.length} frames) | ${ms(result.scrollFrameMs.p50)} / ${ms(result.scrollFrameMs.p99)} |
| of which the download of the trace JSON, median | ${ms(result.traceDownloadInPageMs)} |
| of which building the trace model (OTLP → tree), median | ${ms(result.modelBuildMs)} |
| collapse + expand the root (worst) | ${ms(toggleMs)} |
| API fetch of the trace (OTLP JSON, ${(body.length / 1e6).toFixed(1)} MB) | ${ms(apiMs)} |
| machine load average (1 min) at the end | ${loadavg()[0].toFixed(1)} |`);
} finally {
  await browser?.close();
  await server.stop();
}

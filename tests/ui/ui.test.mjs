// Browser tests of Clew's web UI: headless Debian Chromium against a real `clew serve` loaded with known traces.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARTIFACTS, launchBrowser } from './lib/browser.mjs';
import { sendOtlp, startClew } from './lib/server.mjs';
import { IDS, PAYMENT_SPAN_OF_FAST, backgroundTraces, jaegerDocument, knownTraces } from './lib/traces.mjs';

const DOCS_IMAGES = new URL('../../docs/images/', import.meta.url).pathname;
const BACKGROUND = 24; // frontend traces besides the three known ones
let server;
let browser;

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.errors = errors;
  return page;
}

/** Saves a screenshot as a test artifact; `docs` also copies it into docs/images for the README when the run
 * asks for it (`UPDATE_DOCS_IMAGES=1 npm test`), so an ordinary run leaves the committed images alone. */
async function shot(page, name, { docs = false } = {}) {
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  if (docs && process.env.UPDATE_DOCS_IMAGES === '1') {
    mkdirSync(DOCS_IMAGES, { recursive: true });
    copyFileSync(file, join(DOCS_IMAGES, `${name}.png`));
  }
}

const resultIds = (page) => page.locator('li.result').evaluateAll((els) => els.map((e) => e.dataset.traceId));
const rowNames = (page) => page.locator('[role=treeitem] .row-name').allTextContents();

/** Page coordinates of the topmost pixel of a colour (±30 per channel) in a canvas: the peak of a plotted line. */
async function topPixel(canvas, [r0, g0, b0]) {
  await canvas.scrollIntoViewIfNeeded(); // the mouse clicks in the viewport
  return canvas.evaluate(
    (c, [r0, g0, b0]) => {
      const { data, width, height } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
      for (let i = 0; i < width * height; i++) {
        const [r, g, b] = [data[4 * i], data[4 * i + 1], data[4 * i + 2]];
        if (Math.abs(r - r0) < 30 && Math.abs(g - g0) < 30 && Math.abs(b - b0) < 30 && data[4 * i + 3] > 200) {
          const rect = c.getBoundingClientRect();
          return { x: rect.left + ((i % width) * rect.width) / width, y: rect.top + (Math.floor(i / width) * rect.height) / height };
        }
      }
      return null;
    },
    [r0, g0, b0],
  );
}
const RATE_BLUE = [78, 121, 167];

describe('Clew web UI', () => {
  before(async () => {
    server = await startClew();
    for (const req of [...knownTraces(), ...backgroundTraces(BACKGROUND)]) await sendOtlp(server, req);
    // One trace of another tenant, which only that tenant sees.
    const [other] = backgroundTraces(1);
    other.resourceSpans[0].resource.attributes[0].value.stringValue = 'billing';
    await sendOtlp(server, other, 'team-a');
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('serves the UI at / and keeps unknown API paths JSON', async () => {
    const res = await fetch(`${server.queryUrl}/trace/${IDS.fast}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/html/);
    const api = await fetch(`${server.queryUrl}/api/v1/no-such-thing`);
    assert.equal(api.status, 404);
    assert.match(api.headers.get('content-type'), /json/);
  });

  test('search by service: form fills the URL, results newest first', async () => {
    const page = await newPage();
    await page.goto(server.queryUrl + '/');
    await page.getByLabel('service', { exact: true }).selectOption('checkout');
    await page.getByRole('button', { name: 'Find traces' }).click();
    await page.waitForURL(/service=checkout/);
    await page.locator('li.result').nth(1).waitFor();
    assert.deepEqual(await resultIds(page), [IDS.slow, IDS.fast]);
    const first = page.locator('li.result').first();
    assert.match(await first.textContent(), /checkout: POST \/checkout/);
    assert.match(await first.textContent(), /7 spans \(3 matching\)/); // root, GET /cart and charge of checkout
    assert.match(await first.textContent(), /2 errors/);
    await page.locator('[data-testid=scatter] canvas').first().waitFor();
    assert.equal(await page.getByTestId('result-count').textContent(), '2 traces');
    await shot(page, 'search-service');
    assert.deepEqual(page.errors, []);
    // Clicking the red dot (the failing trace) in the scatter plot opens that trace.
    const dot = await page.locator('[data-testid=scatter] canvas').first().evaluate((canvas) => {
      const ctx = canvas.getContext('2d');
      const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      for (let i = 0; i < width * height; i++) {
        const [r, g, b] = [data[4 * i], data[4 * i + 1], data[4 * i + 2]];
        if (r > 200 && g < 60 && b < 60) {
          const rect = canvas.getBoundingClientRect();
          return { x: rect.left + ((i % width) * rect.width) / width, y: rect.top + (Math.floor(i / width) * rect.height) / height };
        }
      }
      return null;
    });
    assert.ok(dot, 'no red dot in the scatter plot');
    await page.mouse.move(dot.x, dot.y + 2);
    await page.mouse.click(dot.x, dot.y + 2);
    await page.waitForURL(new RegExp(`/trace/${IDS.slow}`));
    await page.getByTestId('trace-id').filter({ hasText: IDS.slow }).waitFor();
  });

  test('search without filters: scatter plot and list, newest first, load more', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/?limit=20`);
    await page.getByText('20 traces').waitFor();
    const firstPage = await resultIds(page);
    assert.equal(firstPage.length, 20);
    await page.getByRole('button', { name: 'Load more' }).click();
    await page.getByText(`${BACKGROUND + 3} traces`).waitFor();
    const all = await resultIds(page);
    assert.deepEqual(all.slice(0, 20), firstPage);
    assert.equal(new Set(all).size, BACKGROUND + 3);
    // Newest first: the start times shown in the list never increase.
    const starts = await page.locator('li.result .result-meta').allTextContents();
    const times = starts.map((t) => t.split(' · ')[0]);
    assert.deepEqual([...times].sort().reverse(), times);
    assert.equal(await page.getByRole('button', { name: 'Load more' }).count(), 0);
    await page.locator('[data-testid=scatter] canvas').first().waitFor();
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, 'search', { docs: true });
    assert.deepEqual(page.errors, []);
  });

  test('search by attribute, and the URL alone reproduces the search', async () => {
    const page = await newPage();
    await page.goto(server.queryUrl + '/');
    await page.getByRole('button', { name: '+ attribute' }).click();
    await page.getByLabel('attribute key').fill('customer.tier');
    await page.getByLabel('attribute value').fill('silver');
    await page.getByRole('button', { name: 'Find traces' }).click();
    await page.waitForURL(/attr=customer.tier%3Dsilver/);
    await page.getByText('1 traces').waitFor();
    assert.deepEqual(await resultIds(page), [IDS.slow]);
    // The same URL in a fresh page gives the same search, form included.
    const shared = await newPage();
    await shared.goto(page.url());
    await shared.getByText('1 traces').waitFor();
    assert.deepEqual(await resultIds(shared), [IDS.slow]);
    assert.equal(await shared.getByLabel('attribute value').inputValue(), 'silver');
    // A numeric comparison on a span attribute.
    await shared.goto(`${server.queryUrl}/?attr=${encodeURIComponent('amount.cents>=4599')}&range=1h`);
    await shared.getByText('2 traces').waitFor();
    await shot(shared, 'search-attribute');
  });

  test('open a trace from the results: timeline with every span, ruler, minimap', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/?service=payment`);
    await page.locator(`li.result[data-trace-id="${IDS.fast}"] a`).click();
    await page.waitForURL(new RegExp(`/trace/${IDS.fast}`));
    await page.getByTestId('span-count').waitFor();
    assert.equal(await page.getByTestId('span-count').textContent(), '7 spans');
    assert.equal(await page.getByTestId('trace-id').textContent(), IDS.fast);
    assert.deepEqual(await rowNames(page), ['POST /checkout', 'auth.verify', 'GET /cart', 'GET /cart', 'redis GET', 'charge', 'charge']);
    assert.match(await page.getByTestId('time-ruler').textContent(), /120 ms/);
    assert.ok(await page.getByTestId('minimap').isVisible());
    // Open a span so the README picture shows the detail panel too.
    await page.locator('[data-span-id="f100000000000005"]').click();
    await page.getByTestId('span-detail').waitFor();
    await shot(page, 'trace', { docs: true });
    assert.deepEqual(page.errors, []);
  });

  test('expand and collapse the span tree (mouse and keyboard)', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/trace/${IDS.fast}`);
    await page.locator('[role=treeitem]').nth(6).waitFor();
    const cart = page.locator('[data-span-id="f100000000000003"]');
    await cart.getByRole('button', { name: 'collapse' }).click();
    assert.deepEqual(await rowNames(page), ['POST /checkout', 'auth.verify', 'GET /cart', 'charge', 'charge']);
    assert.equal(await cart.getAttribute('aria-expanded'), 'false');
    await shot(page, 'collapsed');
    await cart.getByRole('button', { name: 'expand' }).click();
    assert.equal((await rowNames(page)).length, 7);
    // Keyboard: select the root, ArrowLeft collapses it, ArrowRight expands it, ArrowDown moves on.
    await page.locator('[data-span-id="f100000000000001"]').click();
    await page.getByTestId('waterfall').focus();
    await page.keyboard.press('ArrowLeft');
    assert.deepEqual(await rowNames(page), ['POST /checkout']);
    await page.keyboard.press('ArrowRight');
    assert.equal((await rowNames(page)).length, 7);
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.locator('[role=treeitem][aria-selected=true] .row-name').textContent(), 'GET /cart');
    assert.match(await page.getByTestId('span-detail').textContent(), /GET \/cart/);
  });

  test('zoom the timeline by dragging across the minimap', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/trace/${IDS.fast}`);
    await page.locator('[role=treeitem]').nth(6).waitFor();
    const box = await page.getByTestId('minimap').boundingBox();
    // Drag from 45 ms to 105 ms of the 120 ms trace.
    const x = (ms) => box.x + (box.width * ms) / 120;
    await page.mouse.move(x(45), box.y + 10);
    await page.mouse.down();
    await page.mouse.move(x(75), box.y + 20, { steps: 4 });
    await page.mouse.move(x(105), box.y + 20, { steps: 4 });
    await page.mouse.up();
    const ticks = await page.getByTestId('time-ruler').locator('.tick').allTextContents();
    assert.equal(ticks[0], '45.0 ms', ticks.join());
    assert.equal(ticks.at(-1), '105 ms', ticks.join());
    // The payment charge (47–98 ms) now fills most of the track; auth.verify (2–12 ms) is left of the window.
    const track = await page.locator('[data-span-id="f100000000000005"] .row-track').boundingBox();
    const bar = await page.locator('[data-span-id="f100000000000005"] .bar').boundingBox();
    assert.ok(bar.width > track.width * 0.8, `${bar.width} of ${track.width}`);
    const auth = await page.locator('[data-span-id="f100000000000002"] .bar').boundingBox();
    assert.ok(auth.x + auth.width <= track.x, 'auth.verify should be outside the window');
    await shot(page, 'zoomed');
    await page.getByRole('button', { name: 'Reset zoom' }).click();
    assert.equal(await page.getByTestId('time-ruler').locator('.tick').first().textContent(), '0 ns');
  });

  test('span details: attributes by origin, events, status', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/trace/${IDS.slow}`);
    await page.locator('[data-span-id="f200000000000005"]').click();
    const detail = page.getByTestId('span-detail');
    await detail.waitFor();
    const text = await detail.textContent();
    for (const expected of ['payment', 'server', 'error: upstream 502', 'payment.provider', 'stripe', 'amount.cents', '4599',
      'Resource attributes', 'service.version', '1.4.2', 'Instrumentation scope', 'clew-ui-test',
      'Events (2)', 'card.validated', 'card.brand = visa', 'charge.declined']) {
      assert.ok(text.includes(expected), `span detail lacks ${expected}: ${text}`);
    }
    assert.equal(await page.locator('[data-span-id="f200000000000005"] .error-mark').count(), 1);
    await shot(page, 'span-detail');
    await page.keyboard.press('Escape');
  });

  test('search within the trace jumps to matches', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/trace/${IDS.fast}`);
    await page.locator('[role=treeitem]').nth(6).waitFor();
    await page.getByLabel('find in trace').fill('redis');
    assert.equal(await page.getByTestId('match-count').textContent(), '1 match');
    await page.getByLabel('find in trace').press('Enter');
    assert.equal(await page.getByTestId('match-count').textContent(), '1 of 1');
    assert.equal(await page.locator('[role=treeitem][aria-selected=true] .row-name').textContent(), 'redis GET');
    assert.equal(await page.locator('[role=treeitem].matched').count(), 1);
    await page.getByLabel('find in trace').fill('charge');
    await page.getByLabel('find in trace').press('Enter');
    assert.equal(await page.getByTestId('match-count').textContent(), '1 of 2');
  });

  test('statistics, flame graph and raw JSON views', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/trace/${IDS.fast}`);
    await page.getByRole('tab', { name: 'Statistics' }).click();
    const stats = await page.getByTestId('stats').locator('tbody tr').allTextContents();
    assert.equal(stats.length, 7, stats.join("\n")); // checkout×4 operations, cart×2, payment×1
    // GET /cart exists in two services; the root's self time is its 120 ms minus its children's union.
    const cells = await page.getByTestId('stats').locator('tbody tr').evaluateAll((rows) =>
      rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)),
    );
    const row = (service, name) => cells.find((c) => c[0] === service && c[1] === name);
    // Root: 120 ms, children cover 2–12, 15–40 and 45–100 ms → 90 ms, so 30 ms of self time (25% of the trace).
    assert.deepEqual(row('checkout', 'POST /checkout').slice(2), ['1', '0', '120 ms', '30.0 ms', '25.0%', '120 ms']);
    // The cart server span (21 ms) waits 10 ms for redis; the two GET /cart are kept apart by service.
    assert.deepEqual(row('cart', 'GET /cart').slice(4, 6), ['21.0 ms', '11.0 ms']);
    assert.deepEqual(row('checkout', 'GET /cart').slice(4, 6), ['25.0 ms', '4.00 ms']);
    // Sorted by self time: the payment charge (51 ms, no children) first.
    assert.deepEqual(cells[0].slice(0, 2), ['payment', 'charge']);
    await shot(page, 'stats');
    await page.getByRole('tab', { name: 'Flame graph' }).click();
    const boxes = await page.getByTestId('flame-graph').locator('.flame-box').allTextContents();
    assert.deepEqual([...boxes].sort(), ['GET /cart', 'GET /cart', 'POST /checkout', 'auth.verify', 'charge', 'charge', 'redis GET'].sort());
    await shot(page, 'flame-graph');
    await page.getByRole('tab', { name: 'JSON' }).click();
    const json = JSON.parse(await page.getByTestId('raw-json').textContent());
    assert.equal(json.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)).length, 7);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download JSON' }).click()]);
    assert.equal(download.suggestedFilename(), `trace-${IDS.fast}.json`);
  });

  test('critical path is highlighted when the server computes it', async (t) => {
    const res = await fetch(`${server.queryUrl}/api/v1/traces/${IDS.fast}/critical-path`);
    if (res.status === 404) return t.skip('waiting for GET /api/v1/traces/{id}/critical-path');
    assert.equal(res.status, 200);
    const page = await newPage();
    await page.goto(`${server.queryUrl}/trace/${IDS.fast}`);
    await page.locator('[role=treeitem]').nth(6).waitFor();
    // The timeline shows first; the critical path arrives from the server after it.
    await page.locator('[role=treeitem].critical').first().waitFor();
    const toggle = page.getByLabel('critical path');
    assert.equal(await toggle.isChecked(), true);
    const critical = await page.locator('[role=treeitem].critical').evaluateAll((els) => els.map((e) => e.dataset.spanId));
    // The payment charge (the longest step) is on the critical path; auth.verify runs before it and ends early.
    assert.ok(critical.includes('f100000000000001'), critical.join());
    assert.ok(critical.includes('f100000000000005'), critical.join());
    assert.ok((await page.locator('.critical-segment').count()) >= critical.length);
    await shot(page, 'critical-path');
    await toggle.uncheck();
    assert.equal(await page.locator('.critical-segment').count(), 0);
  });

  test('follow a span link to the linked trace', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/trace/${IDS.linked}`);
    await page.locator('[data-span-id="c300000000000001"]').click();
    const link = page.getByTestId('span-detail').locator('a.trace-link');
    assert.match(await link.textContent(), new RegExp(`trace ${IDS.fast} / span ${PAYMENT_SPAN_OF_FAST}`));
    assert.match(await page.getByTestId('span-detail').textContent(), /link.reason = caused by/);
    await link.click();
    await page.waitForURL(new RegExp(`/trace/${IDS.fast}\\?span=${PAYMENT_SPAN_OF_FAST}`));
    // The page shows the linked trace once it has loaded it (the old one stays on screen meanwhile).
    await page.getByTestId('trace-id').filter({ hasText: IDS.fast }).waitFor({ timeout: 10_000 });
    await page.getByTestId('span-detail').waitFor();
    assert.equal(await page.getByTestId('trace-id').textContent(), IDS.fast);
    // The linked span is selected and its details are open.
    assert.equal(await page.locator('[role=treeitem][aria-selected=true]').getAttribute('data-span-id'), PAYMENT_SPAN_OF_FAST);
    assert.match(await page.getByTestId('span-detail').textContent(), /stripe/);
    await shot(page, 'followed-link');
  });

  test('compare two traces picked from the results', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/?service=checkout`);
    await page.locator('li.result').nth(1).waitFor();
    await page.getByLabel(`select ${IDS.fast} for comparison`).check();
    await page.getByLabel(`select ${IDS.slow} for comparison`).check();
    await page.getByRole('button', { name: /Compare selected \(2\/2\)/ }).click();
    await page.waitForURL(/\/compare\?a=/);
    await page.getByTestId('diff').waitFor();
    const rows = await page.getByTestId('diff').locator('tbody tr').evaluateAll((els) =>
      els.map((e) => ({ presence: e.dataset.presence, text: e.textContent })),
    );
    const url = new URL(page.url());
    const aIsFast = url.searchParams.get('a') === IDS.fast;
    const onlyFast = aIsFast ? 'only-a' : 'only-b';
    const onlySlow = aIsFast ? 'only-b' : 'only-a';
    assert.ok(rows.some((r) => r.presence === onlyFast && r.text.includes('auth.verify')), JSON.stringify(rows));
    assert.ok(rows.some((r) => r.presence === onlySlow && r.text.includes('retry')), JSON.stringify(rows));
    // Biggest difference first: the root (+360 ms) ties with the two charge spans; the cart path did not change.
    assert.ok(rows[0].text.includes('360 ms'), JSON.stringify(rows[0]));
    const cart = rows.find((r) => r.text.includes('cart: redis GET'));
    assert.equal(cart.presence, 'both');
    assert.ok(cart.text.endsWith('0 ns'), cart.text);
    assert.equal(rows.indexOf(cart) > rows.findIndex((r) => r.text.includes('retry')), true);
    await shot(page, 'compare');
  });

  test('compare by typed ids, and a clear error for an unknown id', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/compare`);
    await page.getByLabel('trace A').fill(IDS.fast);
    await page.getByLabel('trace B').fill('0'.repeat(31) + '9');
    await page.getByRole('button', { name: 'Compare' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').textContent(), /trace B/);
  });

  test('TraceQL: a query finds traces, a parse error is shown at its position', async (t) => {
    const probe = await fetch(`${server.queryUrl}/api/v1/traceql?q=${encodeURIComponent('{}')}`);
    if (probe.status === 404) return t.skip('waiting for GET /api/v1/traceql');
    const page = await newPage();
    await page.goto(`${server.queryUrl}/?mode=traceql`);
    const editor = page.locator('[data-testid=traceql-editor] .cm-content');
    await editor.click();
    await page.keyboard.type('{ resource.service.name = "inventory" }');
    await page.keyboard.press('Control+Enter');
    await page.waitForURL(/mode=traceql/);
    await page.getByText('1 traces').waitFor();
    assert.deepEqual(await resultIds(page), [IDS.linked]);
    assert.match(await page.locator('li.result').first().textContent(), /2 spans \(2 matching\)/);
    // Highlighting comes from the Lezer grammar: the string literal has its own style.
    assert.ok((await page.locator('.cm-line span').count()) >= 3);
    await page.goto(`${server.queryUrl}/?mode=traceql&q=${encodeURIComponent('{ span.http.status_code = = 500 }')}`);
    const error = page.locator('.traceql-error');
    await error.waitFor();
    const message = await error.textContent();
    assert.match(message, /line 1, col \d+/);
    const col = Number(/col (\d+)/.exec(message)[1]);
    const caret = await error.locator('pre.caret').textContent();
    assert.equal(caret.split('\n')[1].indexOf('^'), col - 1, caret);
    await page.locator('.cm-lintRange-error').first().waitFor();
    await shot(page, 'traceql-error');
  });

  test('TraceQL completion offers attribute names and values from the API', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/?mode=traceql`);
    const editor = page.locator('[data-testid=traceql-editor] .cm-content');
    await editor.click();
    await page.keyboard.type('{ span.payment.pro');
    const menu = page.locator('.cm-tooltip-autocomplete');
    await menu.filter({ hasText: 'payment.provider' }).waitFor();
    await page.waitForTimeout(150);
    await page.keyboard.press('Enter');
    assert.equal(await editor.textContent(), '{ span.payment.provider}'); // the closing brace comes from closeBrackets
    await page.keyboard.type(' = ');
    await page.keyboard.press('Control+Space');
    await menu.filter({ hasText: '"stripe"' }).waitFor();
    await page.waitForTimeout(150); // CodeMirror ignores Enter for 75 ms after a completion list opens
    await page.keyboard.press('Enter');
    assert.equal(await editor.textContent(), '{ span.payment.provider = "stripe"}');
    await shot(page, 'traceql-completion');
  });

  test('the tenant picker reads as another tenant', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/?service=billing`);
    await page.getByText('No traces match.').waitFor();
    assert.equal(await page.getByLabel('service', { exact: true }).locator('option', { hasText: 'billing' }).count(), 0);
    await page.getByLabel('tenant').fill('team-a');
    await page.getByLabel('tenant').press('Enter');
    await page.getByText('1 traces').waitFor();
    assert.match(await page.locator('li.result').first().textContent(), /billing: GET \/home/);
    assert.equal(await page.getByLabel('service', { exact: true }).locator('option', { hasText: 'billing' }).count(), 1);
  });

  test('offline view: OTLP JSON and Jaeger JSON files open without the server', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/offline`);
    const otlpFile = join(ARTIFACTS, 'offline-otlp.json');
    const [fast, slow] = knownTraces();
    writeFileSync(otlpFile, JSON.stringify({ resourceSpans: [...fast.resourceSpans, ...slow.resourceSpans] }));
    await page.getByLabel('trace file').setInputFiles(otlpFile);
    await page.getByTestId('span-count').waitFor();
    // Two traces in one file: a picker, the first shown.
    assert.equal(await page.getByLabel('trace in file').locator('option').count(), 2);
    assert.equal(await page.getByTestId('span-count').textContent(), '7 spans');
    await shot(page, 'offline-otlp');

    const jaegerFile = join(ARTIFACTS, 'offline-jaeger.json');
    writeFileSync(jaegerFile, JSON.stringify(jaegerDocument()));
    // Drop the file on the drop zone, as a person would.
    const bytes = JSON.stringify(jaegerDocument());
    const dataTransfer = await page.evaluateHandle((text) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], 'jaeger.json', { type: 'application/json' }));
      return dt;
    }, bytes);
    await page.getByTestId('dropzone').dispatchEvent('drop', { dataTransfer });
    await page.getByTestId('trace-id').filter({ hasText: IDS.fast }).waitFor();
    assert.deepEqual(await rowNames(page), ['POST /checkout', 'auth.verify', 'GET /cart', 'GET /cart', 'redis GET', 'charge', 'charge']);
    await page.locator('[data-span-id="f100000000000005"]').click();
    assert.match(await page.getByTestId('span-detail').textContent(), /payment\.provider.*stripe/);
    await shot(page, 'offline-jaeger');

    // A file that is neither format gets a clear message.
    const bad = join(ARTIFACTS, 'offline-bad.json');
    writeFileSync(bad, '{"hello": 1}');
    await page.getByLabel('trace file').setInputFiles(bad);
    assert.match(await page.getByRole('alert').textContent(), /neither OTLP JSON/);
  });

  test('sampling page: configuration and decisions per policy; a trace shows why it was kept', async () => {
    const configDir = mkdtempSync(join(tmpdir(), 'clew-ui-sampling-'));
    const config = join(configDir, 'clew.toml');
    writeFileSync(
      config,
      `[tail_sampling]
enabled = true
decision_wait = "1s"

[[tail_sampling.policies]]
name = "errors"
type = "status_code"
status_code = { status_codes = ["ERROR"] }

[[tail_sampling.policies]]
name = "slow"
type = "latency"
latency = { threshold_ms = 5000 }
`,
    );
    const sampled = await startClew({ extraArgs: ['--config', config] });
    try {
      const [plain, , failed] = backgroundTraces(3); // the third has ERROR spans
      const errorId = failed.resourceSpans[0].scopeSpans[0].spans[0].traceId;
      await sendOtlp(sampled, plain);
      await sendOtlp(sampled, failed);
      // The decision comes after decision_wait; the query port serves the sampling API too.
      const deadline = Date.now() + 15_000;
      let res;
      while ((res = await fetch(`${sampled.queryUrl}/api/v1/sampling/traces/${errorId}`)).status !== 200) {
        assert.ok(Date.now() < deadline, `no decision for ${errorId}: ${await res.text()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal((await res.json()).policy, 'errors');

      const page = await newPage();
      await page.goto(`${sampled.queryUrl}/`);
      await page.getByRole('link', { name: 'Sampling' }).click();
      const policies = page.getByTestId('sampling-policies');
      await policies.waitFor();
      assert.equal(await page.getByTestId('tail-enabled').textContent(), 'on');
      const errorsRow = policies.locator('tr', { hasText: 'errors' });
      const cells = await errorsRow.locator('td').allTextContents();
      assert.equal(cells[0], 'errors');
      assert.equal(cells[1], 'status_code');
      assert.match(cells[2], /status_codes = \["ERROR"\]/);
      assert.ok(Number(cells[3]) >= 1, `kept by errors: ${cells[3]}`);
      assert.match(await policies.locator('tr', { hasText: 'slow' }).textContent(), /latency.*threshold_ms = 5000/);
      assert.equal(await page.getByTestId('adaptive').textContent(), 'adaptive off');
      await shot(page, 'sampling-page');

      await page.goto(`${sampled.queryUrl}/trace/${errorId}`);
      const note = page.getByTestId('sampling-decision');
      await note.waitFor();
      assert.match(await note.textContent(), /kept by errors.*weight 1/);
      await shot(page, 'sampling-trace');
      assert.deepEqual(page.errors, []);
    } finally {
      await sampled.stop();
      rmSync(configDir, { recursive: true, force: true });
    }
  });

  test('service graph: the known topology, thickness by rate, red by errors; a node shows RED and traces', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/`);
    await page.getByRole('link', { name: 'Service graph' }).click();
    await page.getByTestId('service-graph').waitFor();
    const edges = await page.locator('g.graph-edge').evaluateAll((els) =>
      els.map((e) => ({
        edge: `${e.dataset.client}>${e.dataset.server}`,
        calls: Number(e.dataset.calls),
        errors: Number(e.dataset.errors),
        width: Number(e.querySelector('path').getAttribute('stroke-width')),
        stroke: e.querySelector('path').getAttribute('stroke'),
      })),
    );
    const byEdge = Object.fromEntries(edges.map((e) => [e.edge, e]));
    // Client/server pairs of the known and background traces, and the database calls (db.system) as nodes.
    assert.deepEqual(
      edges.map((e) => `${e.edge} ${e.calls}/${e.errors}`).sort(),
      [
        'cart>redis 2/0',
        'catalog>postgresql 24/0',
        'checkout>cart 2/0',
        'checkout>payment 2/1',
        'frontend>catalog 24/5',
        'inventory>postgresql 1/0',
      ],
    );
    const nodes = await page.locator('g.graph-node').evaluateAll((els) =>
      els.map((e) => `${e.dataset.node}${e.classList.contains('database') ? ' (db)' : ''}`).sort(),
    );
    assert.deepEqual(nodes, [
      'cart', 'catalog', 'checkout', 'frontend', 'inventory', 'payment', 'postgresql (db)', 'redis (db)',
    ]);
    assert.ok(byEdge['frontend>catalog'].width > byEdge['checkout>cart'].width, 'more calls, thicker edge');
    const rgb = (s) => s.match(/\d+/g).map(Number);
    const [r1, g1] = rgb(byEdge['checkout>payment'].stroke); // half the calls failed
    const [r2, g2] = rgb(byEdge['checkout>cart'].stroke); // none failed
    assert.ok(r1 - g1 > 60 && r2 - g2 < 0, `error edge ${byEdge['checkout>payment'].stroke}, ok edge ${byEdge['checkout>cart'].stroke}`);

    await page.locator('g.graph-node[data-node=checkout]').click();
    await page.waitForURL(/service=checkout/);
    const panel = page.getByTestId('node-panel');
    await panel.locator('[data-testid=red-rate] canvas').first().waitFor();
    assert.equal(await panel.locator('.red-chart').count(), 3);
    const slowest = panel.getByTestId('slowest-traces').locator('li');
    await slowest.nth(1).waitFor();
    const slowIds = await slowest.evaluateAll((els) => els.map((e) => e.dataset.traceId));
    assert.deepEqual(slowIds, [IDS.slow, IDS.fast]); // the checkout traces, slowest first
    const failing = panel.getByTestId('failing-traces').locator('li');
    await failing.first().waitFor();
    assert.deepEqual(await failing.evaluateAll((els) => els.map((e) => e.dataset.traceId)), [IDS.slow]);
    await shot(page, 'service-graph', { docs: true });
    assert.deepEqual(page.errors, []);

    // A point of the node's rate chart opens the search for that service in that time bucket.
    const peak = await topPixel(panel.locator('[data-testid=red-rate] canvas').first(), RATE_BLUE);
    assert.ok(peak, 'no rate line in the chart');
    await page.mouse.move(peak.x, peak.y + 1);
    await page.mouse.click(peak.x, peak.y + 1);
    await page.waitForURL(/\/\?service=checkout&range=custom&start=/);
    await page.locator('li.result').first().waitFor();
    const found = await resultIds(page);
    assert.equal(found.length, 1, `one checkout trace per bucket: ${found}`);
    assert.ok([IDS.fast, IDS.slow].includes(found[0]));

    // A trace link of the panel opens the trace.
    await page.goBack();
    await page.getByTestId('failing-traces').locator('a').first().click();
    await page.waitForURL(new RegExp(`/trace/${IDS.slow}`));
    await page.getByTestId('trace-id').filter({ hasText: IDS.slow }).waitFor();
    assert.deepEqual(page.errors, []);
  });

  test('services page: RED per service and per operation; a point opens the traces of that moment', async () => {
    const page = await newPage();
    await page.goto(`${server.queryUrl}/`);
    await page.getByRole('link', { name: 'Services', exact: true }).click();
    await page.locator('section.red-service').first().waitFor();
    const services = await page.locator('section.red-service').evaluateAll((els) => els.map((e) => e.dataset.service));
    assert.deepEqual([...services].sort(), ['cart', 'catalog', 'checkout', 'frontend', 'inventory', 'payment']);
    const checkout = page.locator('section.red-service[data-service=checkout]');
    assert.match(await checkout.locator('h2').textContent(), /7 calls · 1 errors/); // 4 + 3 spans, 1 failed root
    assert.equal(await checkout.locator('.red-charts').first().locator('canvas').count() >= 3, true);

    await checkout.getByRole('button', { name: /checkout/ }).click();
    await page.waitForURL(/service=checkout/);
    const ops = page.getByTestId('operations').locator('section.red-operation');
    await ops.first().waitFor();
    const names = await ops.evaluateAll((els) => els.map((e) => e.dataset.operation));
    assert.deepEqual([...names].sort(), ['GET /cart', 'POST /checkout', 'auth.verify', 'charge']);
    const root = page.locator('section.red-operation[data-operation="POST /checkout"]');
    assert.match(await root.locator('h3').textContent(), /2 calls · 1 errors/);
    await root.locator('[data-testid=red-rate] canvas').first().waitFor();
    await shot(page, 'services-red', { docs: true });
    assert.deepEqual(page.errors, []);

    const peak = await topPixel(root.locator('[data-testid=red-rate] canvas').first(), RATE_BLUE);
    assert.ok(peak, 'no rate line in the operation chart');
    await page.mouse.move(peak.x, peak.y + 1);
    await page.mouse.click(peak.x, peak.y + 1);
    await page.waitForURL(/\/\?service=checkout&name=POST\+%2Fcheckout&range=custom&start=/);
    await page.locator('li.result').first().waitFor();
    const found = await resultIds(page);
    assert.equal(found.length, 1, `one checkout trace per bucket: ${found}`);
    assert.ok([IDS.fast, IDS.slow].includes(found[0]));
    assert.deepEqual(page.errors, []);
  });
});

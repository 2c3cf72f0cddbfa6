// Browser test of the alerts page: a real `clew serve` with an alert rule in its config file gets failing spans,
// the rule fires, and the page shows it firing with its value and example traces that open the trace view.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARTIFACTS, launchBrowser } from './lib/browser.mjs';
import { sendOtlp, startClew } from './lib/server.mjs';

const SERVICE = 'ui-alerts-checkout';
let server;
let browser;
let configDir;

/** `count` one-span traces of POST /pay ending now, `failing` or not; returns their trace ids. */
function payments(count, failing) {
  const now = BigInt(Date.now()) * 1_000_000n;
  const spans = Array.from({ length: count }, () => ({
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    name: 'POST /pay',
    kind: 2,
    startTimeUnixNano: String(now - 120_000_000n),
    endTimeUnixNano: String(now),
    status: failing ? { code: 2, message: 'card declined' } : { code: 1 },
  }));
  const request = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: SERVICE } }] },
        scopeSpans: [{ scope: { name: 'ui-test' }, spans }],
      },
    ],
  };
  return { request, ids: spans.map((s) => s.traceId) };
}

describe('alerts page', () => {
  before(async () => {
    configDir = mkdtempSync(join(tmpdir(), 'clew-ui-alerts-'));
    const config = join(configDir, 'clew.toml');
    writeFileSync(
      config,
      `[alerts]
evaluation_interval = "500ms"

[[alerts.rules]]
name = "checkout-errors"
service = "${SERVICE}"
operation = "POST /pay"
condition = "error_ratio > 10%"
window = "1m"
description = "Payments fail"

[[alerts.rules]]
name = "checkout-latency"
service = "${SERVICE}"
condition = "p99 > 2s"
window = "1m"
`,
    );
    server = await startClew({ extraArgs: ['--config', config] });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  test('a firing rule shows with its value and example traces that open the trace', async () => {
    const failing = payments(2, true);
    await sendOtlp(server, failing.request);
    await sendOtlp(server, payments(2, false).request);
    // Wait for the rule to fire (the API the page reads).
    const deadline = Date.now() + 15_000;
    for (;;) {
      const { rules } = await (await fetch(`${server.queryUrl}/api/v1/alerts`)).json();
      if (rules.find((r) => r.name === 'checkout-errors')?.state === 'firing') break;
      assert.ok(Date.now() < deadline, `the rule did not fire: ${JSON.stringify(rules)}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    const context = await browser.newContext({ viewport: { width: 1400, height: 700 } });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.queryUrl}/`);
    await page.getByRole('link', { name: 'Alerts', exact: true }).click();
    const table = page.getByTestId('alert-rules');
    await table.waitFor();
    assert.equal(await page.getByTestId('alerts-firing').textContent(), '1 rule is firing');

    // Firing first, then the inactive rule.
    const rows = table.locator('tbody tr');
    assert.deepEqual(await rows.evaluateAll((els) => els.map((e) => [e.dataset.rule, e.dataset.state])), [
      ['checkout-errors', 'firing'],
      ['checkout-latency', 'inactive'],
    ]);
    const firing = rows.nth(0);
    assert.equal(await firing.locator('.alert-state').textContent(), 'firing');
    assert.match(await firing.textContent(), /error ratio of ui-alerts-checkout "POST \/pay"/);
    assert.match(await firing.textContent(), /Payments fail/);
    assert.match(await firing.locator('td').nth(2).textContent(), /error_ratio > 10% for 0s over 1m/);
    assert.equal(await firing.getByTestId('alert-value').textContent(), '50%');

    // The example traces are the failing spans; one opens the trace view.
    const links = firing.locator('.alert-examples a');
    const hrefs = await links.evaluateAll((els) => els.map((a) => a.getAttribute('href')));
    assert.ok(hrefs.length >= 1);
    for (const href of hrefs) assert.ok(failing.ids.includes(href.replace('/trace/', '')), href);
    assert.match(await links.first().textContent(), /120 ms error/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'alerts-page.png') });
    await links.first().click();
    await page.waitForURL(`**${hrefs[0]}`);
    await page.locator('[role=treeitem]').first().waitFor();
    assert.match(await page.locator('[role=treeitem]').first().textContent(), /POST \/pay/);
    assert.deepEqual(errors, []);
    await context.close();
  });
});

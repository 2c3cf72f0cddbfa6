// Starts a real `clew serve` on free loopback ports with a fresh data directory, and stops it.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CLEW_BIN = process.env.CLEW_BIN ?? new URL('../../../target/debug/clew', import.meta.url).pathname;

/** `count` distinct free loopback ports: every listener stays open until all are chosen, so none repeats. */
async function freePorts(count) {
  const listeners = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      srv.unref();
      await new Promise((resolve, reject) => {
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', resolve);
      });
      listeners.push(srv);
    }
    return listeners.map((srv) => srv.address().port);
  } finally {
    await Promise.all(listeners.map((srv) => new Promise((resolve) => srv.close(resolve))));
  }
}

/** Every `--<name>-port` flag of `clew serve`, read from its help so new ports never collide with a running Clew. */
function portFlags() {
  const help = execFileSync(CLEW_BIN, ['serve', '--help'], { encoding: 'utf8' });
  return [...new Set(help.match(/--[a-z-]+-port\b/g) ?? [])];
}

/**
 * `extraArgs` go after the generated ones (e.g. `['--config', file]`). A port taken by another process between
 * choosing and binding it makes the start fail with "Address already in use": then it starts again on new ports.
 */
export async function startClew({ extraArgs = [] } = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClewOnce(extraArgs);
    } catch (err) {
      if (attempt >= 3 || !String(err.message).includes('Address already in use')) throw err;
    }
  }
}

async function startClewOnce(extraArgs) {
  const dataDir = mkdtempSync(join(tmpdir(), 'clew-ui-test-'));
  const flags = portFlags();
  const chosen = await freePorts(flags.length);
  const ports = Object.fromEntries(flags.map((flag, i) => [flag, chosen[i]]));
  const args = ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1'];
  for (const [flag, port] of Object.entries(ports)) args.push(flag, String(port));
  args.push(...extraArgs);
  const proc = spawn(CLEW_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => (log += d));
  proc.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const server = {
    queryUrl: `http://127.0.0.1:${ports['--query-port']}`,
    otlpUrl: `http://127.0.0.1:${ports['--otlp-http-port']}`,
    log: () => log,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) {
      rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`clew serve exited with ${proc.exitCode}:\n${log}`);
    }
    try {
      const res = await fetch(`${server.queryUrl}/api/v1/services`);
      if (res.ok) return server;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`clew serve not ready in 30 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sends an OTLP JSON export request over OTLP/HTTP and checks that every span was accepted. */
export async function sendOtlp(server, body, tenant) {
  const res = await fetch(`${server.otlpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(tenant ? { 'X-Scope-OrgID': tenant } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`OTLP export failed: ${res.status} ${text}`);
  const reply = text ? JSON.parse(text) : {};
  if (reply.partialSuccess?.rejectedSpans > 0) throw new Error(`spans rejected: ${text}`);
}

// Runs the unit tests of the UI's logic (test/*.test.ts) with node's test runner: esbuild (Vite's own) bundles
// each test with the modules it imports, since Node cannot load the TypeScript sources itself.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const here = new URL('.', import.meta.url).pathname;
const out = join(here, '../node_modules/.cache/clew-ui-tests');
const tests = readdirSync(here).filter((f) => f.endsWith('.test.ts'));
await build({
  entryPoints: tests.map((f) => join(here, f)),
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
const files = tests.map((f) => join(out, f.replace(/\.ts$/, '.mjs')));
const run = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
process.exit(run.status ?? 1);

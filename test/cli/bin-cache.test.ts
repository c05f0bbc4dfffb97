/**
 * bin/dataio runs the bundled CLI with a V8 code cache per command: the first successful run writes
 * it, and a cache V8 rejects (corrupt, or made for another bundle or Node) is replaced, never fatal.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot, runCli } from '../support/env.js';

const cache = join(repoRoot, 'dist', 'dataio.cjs.other.v8-cache');
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

describe('bin/dataio code cache', () => {
  it('the first run writes the cache; later runs use it', async () => {
    rmSync(cache, { force: true });
    const first = await runCli(['--version']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout.trim(), version);
    assert.ok(existsSync(cache), 'no cache after the first run');
    const written = statSync(cache).mtimeMs;
    const second = await runCli(['--version']);
    assert.equal(second.stdout.trim(), version);
    assert.equal(statSync(cache).mtimeMs, written, 'an accepted cache was written again');
  });

  it('a run that fails (a usage error compiles little) writes no cache', async () => {
    const importCache = join(repoRoot, 'dist', 'dataio.cjs.import.v8-cache');
    rmSync(importCache, { force: true });
    const r = await runCli(['import', '--no-such-flag']);
    assert.equal(r.code, 2);
    assert.ok(!existsSync(importCache), 'a failed run wrote the cache');
  });

  it('a corrupt cache is rejected, replaced, and the command still works', async () => {
    writeFileSync(cache, 'not a V8 code cache');
    const r = await runCli(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), version);
    assert.equal(r.stderr, '');
    assert.ok(statSync(cache).size > 10_000, 'the corrupt cache was not replaced');
  });
});

/**
 * bin/dataio runs the bundled CLI with a V8 code cache per command: the first successful run writes
 * it, and a cache V8 rejects (corrupt, or made for another bundle or Node) is replaced, never fatal.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { scratch } from '../support/files.js';
import { query, repoRoot, runCli, testServers, uniqueName } from '../support/env.js';

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

/**
 * What a small import into a named database loads of Node's own modules: not the embedded server's
 * code, nor node:child_process (commander asks for it at load: the bundle defers it), nor node:zlib
 * (plain input, no --import-id). Each costs every start-up a millisecond or more.
 */
describe('start-up', () => {
  const server = testServers()[0];
  it('an import of a small plain CSV, and an export, on a named database load neither child_process nor zlib', { skip: server === undefined }, async () => {
    if (server === undefined) return;
    const { dir, file } = scratch('startup');
    const hook = file('hook.cjs', "process.on('exit', () => require('node:fs').writeFileSync(process.env.DATAIO_TEST_MODULES, process.moduleLoadList.join('\\n')));\n");
    const csv = file('small.csv', 'id,name\n1,a\n2,b\n');
    const t = uniqueName('startup');
    await query(server, `CREATE TABLE ${t} (id int, name text)`);
    const list = join(dir, 'modules.txt');
    const run = async (extra: string[]) => {
      const r = await runCli(['import', csv, '--table', t, '--db', server.url, '--progress', 'none', ...extra], { env: { NODE_OPTIONS: `--require ${hook}`, DATAIO_TEST_MODULES: list } });
      assert.equal(r.code, 0, r.stderr);
      return readFileSync(list, 'utf8').split('\n');
    };
    const plain = await run([]);
    assert.ok(plain.includes('NativeModule net'), 'the hook saw no modules');
    for (const m of ['NativeModule child_process', 'NativeModule zlib']) assert.ok(!plain.includes(m), `${m} was loaded`);
    // The same hook sees them when they are needed: a resumable import digests its batches (zlib).
    const resumable = await run(['--import-id', uniqueName('startup-id')]);
    assert.ok(resumable.includes('NativeModule zlib'), 'zlib not loaded by a resumable import');
    assert.equal((await query(server, `SELECT count(*)::int AS n FROM ${t}`))[0]?.n, 4);
    // An export without --gzip neither.
    const exported = await runCli(['export', '--table', t, '--db', server.url, '--progress', 'none'], { env: { NODE_OPTIONS: `--require ${hook}`, DATAIO_TEST_MODULES: list } });
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(exported.stdout.split('\n').length, 6, exported.stdout);
    const modules = readFileSync(list, 'utf8').split('\n');
    for (const m of ['NativeModule child_process', 'NativeModule zlib']) assert.ok(!modules.includes(m), `${m} was loaded by an export`);
  });
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { scratch } from '../support/files.js';
import { binPath, query, repoRoot, runCli, testServers, uniqueName } from '../support/env.js';

const MiB = 1024 * 1024;
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Poll (no fixed sleeps) until `check` holds; gives up after many tries so a hang fails the test. */
async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`gave up waiting for ${what}`);
}

for (const server of testServers()) {
  describe(`doc commands on ${server.name}`, () => {
    const { dir, file } = scratch('docs-cli');
    const db = ['--db', server.url];

    it('doc-put prints the id and only that; doc-get -o and to stdout give the bytes back', async () => {
      const data = randomBytes(3 * MiB + 17);
      const name = `${uniqueName('my file')} ü 数据`;
      const put = await runCli(['doc-put', file('a.bin', data), '--name', name, '--content-type', 'application/octet-stream', '--chunk-size', '1MB', ...db]);
      assert.equal(put.code, 0, put.stderr);
      assert.match(put.stdout, /^[0-9a-f-]{36}\n$/);
      const id = put.stdout.trim();
      assert.match(id, ID);
      const out = join(dir, 'a.out');
      const get = await runCli(['doc-get', id, '-o', out, ...db]);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(get.stdout, '');
      assert.ok(readFileSync(out).equals(data));
      const byName = await runCli(['doc-get', name, ...db]);
      assert.equal(byName.code, 0, byName.stderr);
      assert.ok(byName.stdoutBytes.equals(data));
      const stat = await runCli(['doc-stat', name, '--json', ...db]);
      assert.equal(stat.code, 0, stat.stderr);
      const s = JSON.parse(stat.stdout) as Record<string, unknown>;
      assert.deepEqual([s['id'], s['name'], s['state'], s['size'], s['chunks'], s['contentType']], [id, name, 'complete', data.length, 4, 'application/octet-stream']);
      const ls = await runCli(['doc-ls', '--json', ...db]);
      assert.equal(ls.code, 0, ls.stderr);
      const listed = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; name: string });
      assert.equal(listed.find((d) => d.id === id)?.name, name);
      const table = await runCli(['doc-ls', ...db]);
      assert.match(table.stdout, new RegExp(`^${id}\\s+complete\\s+3\\.00 MB\\s+\\S+\\s+${name}$`, 'm'));
    });

    it('doc-put reads stdin', async () => {
      const data = randomBytes(2 * MiB + 3);
      const put = await runCli(['doc-put', '-', '--chunk-size', '1MB', ...db], { stdin: data });
      assert.equal(put.code, 0, put.stderr);
      const get = await runCli(['doc-get', put.stdout.trim(), ...db]);
      assert.ok(get.stdoutBytes.equals(data));
    });

    it('a flipped stored byte makes doc-get fail with a one-line integrity error and no file', async () => {
      const put = await runCli(['doc-put', file('flip.bin', randomBytes(300_000)), '--chunk-size', '64KB', ...db]);
      const id = put.stdout.trim();
      await query(server, `UPDATE dataio.chunks SET data = overlay(data PLACING set_byte('\\x00'::bytea, 0, 255 - get_byte(data, 0)) FROM 1 FOR 1) WHERE doc = $1 AND seq = 2`, [id]);
      const out = join(dir, 'flip.out');
      const get = await runCli(['doc-get', id, '-o', out, ...db]);
      assert.equal(get.code, 1);
      assert.match(get.stderr, /^error: integrity check failed for document \S+: chunk 2 \(bytes 131072–196607\) does not match its SHA-256$/m);
      assert.doesNotMatch(get.stderr, /\bat .*\.js:\d+/);
      assert.equal(existsSync(out), false);
      assert.deepEqual(readdirSync(dir).filter((n) => n.includes('flip.out')), []);
      // To stdout too: one line and exit 1, not a crash (the failed pipeline must not destroy stdout).
      const toStdout = await runCli(['doc-get', id, ...db]);
      assert.equal(toStdout.code, 1);
      assert.match(toStdout.stderr, /^error: integrity check failed for document \S+: chunk 2 \(bytes 131072–196607\) does not match its SHA-256$/m);
      assert.doesNotMatch(toStdout.stderr, /\bat .*\.js:\d+|throw err/);
    });

    it('after kill -9 during doc-put, the upload cannot be fetched, and --resume completes it equal to the file', async () => {
      const chunk = 64 * 1024;
      const data = randomBytes(200 * chunk + 1234);
      const path = file('killed.bin', data);
      const name = uniqueName('killed');
      // Feed stdin by hand so the kill lands mid-upload for sure: 60 chunks' worth, then wait.
      const child = spawn(process.execPath, [binPath, 'doc-put', '-', '--name', name, '--chunk-size', '64KB', '--workers', '1', ...db], {
        cwd: repoRoot,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      child.stdin.on('error', () => undefined);
      child.stdin.write(data.subarray(0, 60 * chunk));
      const stored = async () =>
        (await query<{ n: number }>(server, `SELECT count(c.*)::int AS n FROM dataio.documents d LEFT JOIN dataio.chunks c ON c.doc = d.id WHERE d.name = $1`, [name]).catch(() => [{ n: 0 }]))[0]?.n ?? 0;
      await waitFor('chunks to arrive', async () => (await stored()) >= 40);
      const exited = new Promise((r) => child.on('close', r));
      child.kill('SIGKILL');
      await exited;
      const docs = await query<{ id: string; state: string }>(server, 'SELECT id::text, state FROM dataio.documents WHERE name = $1', [name]);
      assert.equal(docs.length, 1);
      assert.equal(docs[0]?.state, 'uploading');
      const id = docs[0]?.id ?? '';
      const storedAtKill = await stored();
      assert.ok(storedAtKill >= 40 && storedAtKill < 201, `${storedAtKill} chunks in`);

      const early = await runCli(['doc-get', id, '-o', join(dir, 'killed.out'), ...db]);
      assert.equal(early.code, 1);
      assert.match(early.stderr, /is not complete/);
      assert.match(early.stderr, new RegExp(`--resume ${id}`));

      const other = Buffer.from(data);
      other[10] = (other[10] ?? 0) ^ 1;
      const refused = await runCli(['doc-put', file('other.bin', other), '--resume', id, ...db]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^error: .*other\.bin is not the input whose upload .* was interrupted: its chunk 0 .* differs from the one stored$/m);

      const resumed = await runCli(['doc-put', path, '--resume', id, ...db]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.equal(resumed.stdout, `${id}\n`);
      // A backend of the killed process may still have committed a chunk after we counted.
      const reused = Number(/stored 12\.5 MB in 201 chunks, (\d+) of them already stored/.exec(resumed.stderr)?.[1]);
      assert.ok(reused >= storedAtKill && reused < 201, resumed.stderr);
      const out = join(dir, 'killed.out');
      const get = await runCli(['doc-get', id, '-o', out, ...db]);
      assert.equal(get.code, 0, get.stderr);
      assert.ok(readFileSync(out).equals(data));
    });

    it('doc-rm removes a document; doc-get then fails cleanly', async () => {
      const put = await runCli(['doc-put', file('rm.bin', randomBytes(200_000)), '--chunk-size', '64KB', ...db]);
      const id = put.stdout.trim();
      const rm = await runCli(['doc-rm', id, ...db]);
      assert.equal(rm.code, 0, rm.stderr);
      assert.match(rm.stderr, /removed document .*: 4 chunks/);
      const out = join(dir, 'rm.out');
      const get = await runCli(['doc-get', id, '-o', out, ...db]);
      assert.equal(get.code, 1);
      assert.match(get.stderr, new RegExp(`^error: no stored document has the id or name "${id}"$`, 'm'));
      assert.equal(existsSync(out), false);
    });

    it('gives usage errors (exit 2) for bad sizes and worker counts', async () => {
      const p = file('u.bin', Buffer.from('x'));
      for (const args of [
        ['--chunk-size', '10KB'],
        ['--chunk-size', 'lots'],
        ['--workers', '0'],
        ['--workers', '64', '--chunk-size', '64MB'],
      ]) {
        const r = await runCli(['doc-put', p, ...args, ...db]);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stdout, '');
      }
    });
  });
}

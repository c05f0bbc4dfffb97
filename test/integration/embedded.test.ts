/**
 * The embedded default, from a fresh DATAIO_HOME: two dataio processes starting it at the same moment
 * get one server; a busy preferred port makes it take another; stop and status say so.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PREFERRED_PORT } from '../../src/pg/embedded.js';
import { runCli, uniqueName } from '../support/env.js';

function holdPort(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen({ port, host: '127.0.0.1' }, () => resolve(srv));
  });
}

describe('embedded PostgreSQL from a fresh home', () => {
  const home = mkdtempSync(join(tmpdir(), 'dataio-fresh-'));
  chmodSync(home, 0o755);
  const env = { DATAIO_HOME: home };
  let held: Server | undefined;
  const table = uniqueName('race');
  after(async () => {
    await runCli(['db', 'stop'], { env });
    held?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('starts once when two processes race, on another port when the usual one is busy', async () => {
    held = await holdPort(PREFERRED_PORT); // undefined when something else already holds it: busy either way
    const csv = 'id,v\n1,a\n2,b\n';
    const [a, b] = await Promise.all([
      runCli(['import', '-', '--table', `${table}_a`, '--create'], { env, stdin: csv }),
      runCli(['import', '-', '--table', `${table}_b`, '--create'], { env, stdin: csv }),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const notes = [a.stderr, b.stderr].filter((s) => /started the embedded PostgreSQL/.test(s));
    assert.equal(notes.length, 1, 'exactly one of them started the server, and said so once');
    const status = await runCli(['db', 'status', '--json'], { env });
    const st = JSON.parse(status.stdout) as { running: boolean; port: number; version: string };
    assert.equal(st.running, true);
    assert.notEqual(st.port, PREFERRED_PORT);
    assert.match(st.version, /^18\./);
    // A later call reuses the running server without a note.
    const c = await runCli(['export', '--table', `${table}_a`], { env });
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, 'id,v\n1,a\n2,b\n');
    assert.doesNotMatch(c.stderr, /started/);
  });

  it('stops, says so, and starts again with the data kept', async () => {
    const stop = await runCli(['db', 'stop'], { env });
    assert.equal(stop.code, 0, stop.stderr);
    const st = await runCli(['db', 'status'], { env });
    assert.match(st.stdout, /running: no/);
    const url = await runCli(['db', 'url'], { env });
    assert.equal(url.code, 0, url.stderr);
    assert.match(url.stdout, /^postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres\?passfile=/);
    assert.match(url.stderr, /started/);
    const again = await runCli(['db', 'status', '--json'], { env });
    assert.equal((JSON.parse(again.stdout) as { running: boolean }).running, true);
    const kept = await runCli(['export', '--table', `${table}_b`], { env });
    assert.equal(kept.stdout, 'id,v\n1,a\n2,b\n');
    // The URL `db url` prints works for --db (its passfile= parameter is read, as libpq does).
    const viaUrl = await runCli(['export', '--table', `${table}_b`, '--db', url.stdout.trim()]);
    assert.equal(viaUrl.code, 0, viaUrl.stderr);
    assert.equal(viaUrl.stdout, 'id,v\n1,a\n2,b\n');
    // PGPASSFILE (or ~/.pgpass) as libpq reads it, for a URL without a password and for PG* variables,
    // without node-postgres's deprecation warning on stderr.
    const u = new URL(url.stdout.trim());
    const passfile = u.searchParams.get('passfile') ?? '';
    u.search = '';
    const viaPassfile = await runCli(['export', '--table', `${table}_b`, '--db', u.toString()], { env: { PGPASSFILE: passfile } });
    assert.equal(viaPassfile.code, 0, viaPassfile.stderr);
    assert.equal(viaPassfile.stdout, 'id,v\n1,a\n2,b\n');
    assert.equal(viaPassfile.stderr, '');
    const pgEnv = { PGPASSFILE: passfile, PGHOST: u.hostname, PGPORT: u.port, PGUSER: 'postgres', PGDATABASE: 'postgres' };
    const viaPgEnv = await runCli(['export', '--table', `${table}_b`], { env: pgEnv });
    assert.equal(viaPgEnv.code, 0, viaPgEnv.stderr);
    assert.equal(viaPgEnv.stdout, 'id,v\n1,a\n2,b\n');
    assert.equal(viaPgEnv.stderr, '');
  });
});

/**
 * A resumable import across a restart of the PostgreSQL server, on an embedded server of its own (the
 * shared test servers must stay up): the server stops mid-import (fast shutdown: every connection is
 * terminated), comes back, and the import goes on by itself and loads every row exactly once. Then
 * the same again with dataio killed while the server is down, and the command run again.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ensureEmbedded, stopEmbedded } from '../../src/pg/embedded.js';
import { runCli, uniqueName, type TestServer } from '../support/env.js';
import { scratch } from '../support/files.js';
import { checksum, ledgerBatches, referenceChecksum, startCli, waitFor, writeBigCsv, type Checksum, type Running } from '../support/resume.js';

const ROWS = 2_000_000;

describe('resumable import across a server restart', () => {
  const home = mkdtempSync(join(tmpdir(), 'dataio-restart-'));
  chmodSync(home, 0o755);
  const { dir } = scratch('import-restart');
  const big = join(dir, 'big.csv');
  let server: TestServer;
  let reference: Checksum;

  before(async () => {
    const r = await ensureEmbedded(home);
    const c = r.connection;
    server = { name: 'restartable', url: `postgresql://${c.user}:${encodeURIComponent(c.password)}@${c.host}:${c.port}/${c.database}` };
    writeBigCsv(big, ROWS);
    reference = await referenceChecksum(server, uniqueName('ref'), big);
  });
  after(async () => {
    await stopEmbedded(home).catch(() => undefined);
    rmSync(home, { recursive: true, force: true });
  });

  /** A resumable import of the big file, running, with some batches in. */
  async function startResumable(): Promise<{ t: string; args: string[]; run: Running }> {
    const t = uniqueName('restart');
    const id = `${t}-id`;
    const args = ['import', big, '--table', t, '--create', '--import-id', id, '--workers', '2', '--batch-size', '1MB', '--db', server.url, '--progress', 'none'];
    const run = startCli(args);
    await waitFor('some batches to commit', async () => (await ledgerBatches(server, id)) >= 5);
    return { t, args, run };
  }

  it('the server stops and starts mid-import: the import waits, goes on, and loads every row once', async () => {
    const { t, args, run } = await startResumable();
    await stopEmbedded(home);
    await sleep(1000);
    await ensureEmbedded(home);
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /loading it again in/);
    assert.deepEqual(await checksum(server, t), reference);
    const again = await runCli(args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already complete/);
  });

  it('dataio killed while the server is down: after the restart the same command loads the rest, once', async () => {
    const { t, args, run } = await startResumable();
    await stopEmbedded(home);
    run.child.kill('SIGKILL');
    await run.done;
    await ensureEmbedded(home);
    const partial = await checksum(server, t);
    assert.ok(partial.rows > 0 && partial.rows < ROWS, `${partial.rows} rows`);
    const again = await runCli(args);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(await checksum(server, t), reference);
  });
});

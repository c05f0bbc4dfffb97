/**
 * Many processes, one import: the same `dataio import … --import-id ID` started in several processes
 * at once shares the work through the ledger (each claims batches; a batch is loaded once), and a
 * process killed with kill -9 loses nothing: its claimed batches are taken over by the others.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { scratch } from '../support/files.js';
import { testServers, uniqueName } from '../support/env.js';
import { checksum, ledgerBatches, referenceChecksum, startCli, waitFor, writeBigCsv, type Checksum } from '../support/resume.js';

const { dir } = scratch('import-shared');
const ROWS = 1_000_000;
const big = `${dir}/big.csv`;
/** Short leases: a killed process's batches are taken over within seconds even where its death cannot be seen at once. */
const env = { DATAIO_LEASE_SECONDS: '4' };

interface Summary {
  rows: number;
  earlierRows: number;
}

function summary(stdout: string): Summary {
  return JSON.parse(stdout) as Summary;
}

describe('several processes share one import', () => {
  before(() => writeBigCsv(big, ROWS));

  for (const server of testServers()) {
    const db = ['--db', server.url, '--progress', 'none', '--json'];
    describe(`on ${server.name}`, () => {
      let reference: Checksum;
      before(async () => {
        reference = await referenceChecksum(server, uniqueName('ref'), big);
      });

      it('three processes started at once (with --create) load every row once between them, each counting its own', async () => {
        const t = uniqueName('s');
        const args = ['import', big, '--table', t, '--create', '--import-id', t, '--workers', '2', '--batch-size', '256KB', ...db];
        const runs = [startCli(args, env), startCli(args, env), startCli(args, env)];
        const done = await Promise.all(runs.map((r) => r.done));
        for (const d of done) assert.equal(d.code, 0, d.stderr);
        const own = done.map((d) => summary(d.stdout).rows);
        assert.equal(own.reduce((a, b) => a + b, 0), ROWS, `rows per process: ${own.join(', ')}`);
        assert.ok(own.filter((n) => n > 0).length >= 2, `the work was shared: ${own.join(', ')}`);
        for (const d of done) assert.equal(summary(d.stdout).rows + summary(d.stdout).earlierRows, ROWS);
        assert.deepEqual(await checksum(server, t), reference);
      });

      it('kill -9 of one of two processes: the other takes its batches over, every row once', async () => {
        const t = uniqueName('s');
        const args = ['import', big, '--table', t, '--create', '--import-id', t, '--workers', '2', '--batch-size', '256KB', ...db];
        const victim = startCli(args, env);
        await waitFor('the first process to load some batches', async () => (await ledgerBatches(server, t)) >= 3);
        const survivor = startCli(args, env);
        // Both at work: more batches go in, then one dies mid-import holding claims.
        const seen = await ledgerBatches(server, t);
        await waitFor('both to load', async () => (await ledgerBatches(server, t)) >= seen + 6);
        assert.equal(victim.child.exitCode, null, 'the first process ended before it could be killed');
        victim.child.kill('SIGKILL');
        const killed = await victim.done;
        assert.equal(killed.signal, 'SIGKILL');
        const r = await survivor.done;
        assert.equal(r.code, 0, r.stderr);
        const s = summary(r.stdout);
        assert.ok(s.rows > 0 && s.rows + s.earlierRows === ROWS, JSON.stringify(s));
        assert.deepEqual(await checksum(server, t), reference);
      });
    });
  }
});

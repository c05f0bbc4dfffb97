/**
 * Resumable imports (--import-id) and retries: kill -9 of dataio, then the same command loads exactly
 * what is missing; a worker's connection terminated mid-import is retried (resumable: that batch;
 * all-or-nothing: the whole import); a rerun with other input or options is refused.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { scratch } from '../support/files.js';
import { query, runCli, testServers, uniqueName, withUrlPath, type TestServer } from '../support/env.js';
import { BIG_DDL, checksum, ledgerBatches, referenceChecksum, startCli, waitFor, writeBigCsv, type Checksum } from '../support/resume.js';

const { file, dir } = scratch('import-resume');
const ROWS = 2_000_000;
const big = `${dir}/big.csv`;

async function terminateOneCopy(server: TestServer, table: string): Promise<void> {
  await waitFor('a COPY of the import to terminate', async () => {
    const r = await query<{ ok: boolean }>(
      server,
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid() LIMIT 1`,
      [`COPY %${table}%`],
    );
    return r[0]?.ok === true;
  });
}

describe('resumable import', () => {
  before(() => writeBigCsv(big, ROWS));

  for (const server of testServers()) {
    const db = ['--db', server.url, '--progress', 'none'];
    describe(`on ${server.name}`, () => {
      let reference: Checksum;
      before(async () => {
        reference = await referenceChecksum(server, uniqueName('ref'), big);
        assert.equal(reference.rows, ROWS);
      });

      it('kill -9 in the middle of a 2M-row --import-id import, then the same command: every row exactly once', async () => {
        const t = uniqueName('r');
        const id = `${t}-kill`;
        const args = ['import', big, '--table', t, '--create', '--import-id', id, '--workers', '2', '--batch-size', '1MB', ...db];
        const first = startCli(args);
        await waitFor('some batches to commit', async () => (await ledgerBatches(server, id)) >= 5);
        assert.equal(first.child.exitCode, null, 'the import ended before it could be killed');
        first.child.kill('SIGKILL');
        const killed = await first.done;
        assert.equal(killed.signal, 'SIGKILL');
        const partial = await checksum(server, t);
        assert.ok(partial.rows > 0 && partial.rows < ROWS, `${partial.rows} rows after the kill`);
        assert.equal(partial.distinct, partial.rows);

        const again = await runCli(args);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stderr, new RegExp(`more were in from earlier runs of import "${id}"`));
        assert.deepEqual(await checksum(server, t), reference);

        // Once more: nothing to do, nothing doubled.
        const third = await runCli(args);
        assert.equal(third.code, 0, third.stderr);
        assert.match(third.stderr, /was already complete \(2,000,000 rows\): nothing to do/);
        assert.deepEqual(await checksum(server, t), reference);
      });

      it('pg_terminate_backend of one worker: that batch is loaded again, every row once, in the same run', async () => {
        const t = uniqueName('r');
        await query(server, `CREATE TABLE ${t} (${BIG_DDL})`);
        const id = `${t}-term`;
        const run = startCli(['import', big, '--table', t, '--import-id', id, '--workers', '2', '--batch-size', '1MB', ...db]);
        await waitFor('some batches to commit', async () => (await ledgerBatches(server, id)) >= 3);
        await terminateOneCopy(server, t);
        const r = await run.done;
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /failed \(terminating connection due to administrator command\): loading it again/);
        assert.deepEqual(await checksum(server, t), reference);
      });

      it('pg_terminate_backend in an all-or-nothing import: it is rolled back and run again, every row once', async () => {
        const t = uniqueName('r');
        await query(server, `CREATE TABLE ${t} (${BIG_DDL})`);
        const run = startCli(['import', big, '--table', t, '--workers', '2', ...db]);
        await terminateOneCopy(server, t);
        const r = await run.done;
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /trying again in 1 s \(try 2 of 4\)/);
        assert.deepEqual(await checksum(server, t), reference);
      });
    });
  }
});

for (const server of testServers()) {
  const db = ['--db', server.url, '--progress', 'none'];
  describe(`resumable import refusals on ${server.name}`, () => {
    it('a failed resumable import says how to go on; --on-error skip on the rerun loads the rest', async () => {
      const t = uniqueName('r');
      await query(server, `CREATE TABLE ${t} (id int, v int)`);
      const lines = ['id,v'];
      for (let i = 1; i <= 5000; i++) lines.push(i === 4000 ? `${i},bad` : `${i},${i}`);
      const input = file(`${t}.csv`, lines.join('\n') + '\n');
      const args = ['import', input, '--table', t, '--import-id', t, '--workers', '1', '--batch-size', '4KB', ...db];
      const r = await runCli(args);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: import into \S+ failed, at input line 4001, column v: invalid input syntax for type integer: "bad"$/m);
      assert.match(r.stderr, new RegExp(`^hint: .*\\d+ rows of import "${t}" are in; fix the input, or add --on-error skip to set bad rows aside, and run the same command again to load the rest, exactly once$`, 'm'));
      const partial = await checksum(server, t);
      assert.ok(partial.rows > 0 && partial.rows < 4000, `${partial.rows}`);
      const again = await runCli([...args, '--on-error', 'skip']);
      assert.equal(again.code, 3, again.stderr);
      const all = await checksum(server, t);
      assert.equal(all.rows, 4999);
      assert.equal(all.distinct, 4999);
      assert.equal(readFileSync(`${dir}/${t}.rejects.csv`, 'utf8'), 'id,v\n4000,bad\n');
    });

    it('says clearly when the role may not create the ledger', async () => {
      const name = uniqueName('resume_db');
      await query(server, `CREATE DATABASE ${name}`);
      await query(server, `CREATE ROLE ${name} LOGIN PASSWORD 'pw'`);
      try {
        const admin = { ...server, url: withUrlPath(server.url, name) };
        await query(admin, `CREATE TABLE t (id int)`);
        await query(admin, `GRANT SELECT, INSERT ON t TO ${name}`);
        const url = withUrlPath(server.url, name, { name, password: 'pw' });
        const r = await runCli(['import', file(`${name}.csv`, 'id\n1\n'), '--table', 't', '--import-id', 'x', '--db', url, '--progress', 'none']);
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`^error: role ${name} may not create the dataio schema, which keeps the ledger of resumable imports \\(--import-id\\) \\(in database ${name}\\): permission denied`, 'm'));
        assert.match(r.stderr, new RegExp(`^hint: ask the database owner to run once: dataio setup --grant ${name} .*CREATE SCHEMA dataio AUTHORIZATION ${name};`, 'm'));
        // Without --import-id the same role loads (one connection: no two-phase commit to record).
        const plain = await runCli(['import', file(`${name}.csv`, 'id\n1\n'), '--table', 't', '--workers', '1', '--db', url, '--progress', 'none']);
        assert.equal(plain.code, 0, plain.stderr);
      } finally {
        await query(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await query(server, `DROP ROLE IF EXISTS ${name}`);
      }
    });

    it('the same id with other options, or with other input, is refused', async () => {
      const t = uniqueName('r');
      await query(server, `CREATE TABLE ${t} (id int, v int)`);
      const lines = ['id,v'];
      for (let i = 1; i <= 3000; i++) lines.push(i === 2500 ? `${i},bad` : `${i},${i}`);
      const input = file(`${t}.csv`, lines.join('\n') + '\n');
      const args = ['import', input, '--table', t, '--import-id', t, '--workers', '1', '--batch-size', '2KB', ...db];
      assert.equal((await runCli(args)).code, 1);

      const otherOptions = await runCli([...args, '--delimiter', ';']);
      assert.equal(otherOptions.code, 1);
      assert.match(otherOptions.stderr, new RegExp(`^error: import "${t}" was started with delimiter ",", not ";": the same import id must get the same input and options$`, 'm'));

      const otherTable = await runCli(['import', input, '--table', `${t}_other`, '--import-id', t, ...db]);
      assert.equal(otherTable.code, 1);
      assert.match(otherTable.stderr, /was started with table/);

      // Same size, one byte changed in a batch that is in already.
      const changed = `${dir}/${t}-changed.csv`;
      copyFileSync(input, changed);
      writeFileSync(changed, readFileSync(changed, 'utf8').replace('\n10,10\n', '\n10,19\n'));
      const r = await runCli(['import', changed, ...args.slice(2)]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^error: the input is not the one import "${t}" started with: it differs at byte offset \\d+`, 'm'));
      assert.match(r.stderr, /^hint: resume with the same input and options, or choose a new --import-id$/m);

      // From stdin (no size to compare): an input that ends where a loaded batch began is refused too.
      const piped = `${t}_stdin`;
      const stdinArgs = ['import', '-', '--table', t, '--import-id', piped, '--workers', '1', '--batch-size', '2KB', ...db];
      const whole = readFileSync(input);
      assert.equal((await runCli(stdinArgs, { stdin: whole })).code, 1);
      const cut = await query<{ o: string }>(server, 'SELECT batch_offset AS o FROM dataio.import_batches WHERE import_id = $1 ORDER BY 1 OFFSET 2 LIMIT 1', [piped]);
      const short = await runCli(stdinArgs, { stdin: whole.subarray(0, Number(cut[0]?.o)) });
      assert.equal(short.code, 1);
      assert.match(short.stderr, new RegExp(`^error: the input is not the one import "${piped}" started with: it ends before byte offset ${cut[0]?.o}, where a batch of it was loaded$`, 'm'));

      const shorter = file(`${t}-short.csv`, lines.slice(0, 100).join('\n') + '\n');
      const s = await runCli(['import', shorter, ...args.slice(2)]);
      assert.equal(s.code, 1);
      assert.match(s.stderr, /it has \d+ bytes, not \d+/);
    });
  });
}

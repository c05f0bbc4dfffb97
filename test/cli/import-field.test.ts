/**
 * Imports where users' databases are: a server with PostgreSQL's default settings (no prepared
 * transactions: the all-or-nothing import goes through a staging table, crash-safe, with no warning),
 * and PgBouncer in transaction and session mode (every import mode works, and nothing is left on the
 * pooled server connections: no advisory lock, no changed setting, no prepared statement).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { scratch } from '../support/files.js';
import { runCli, uniqueName, type TestServer } from '../support/env.js';
import { BIG_DDL, checksum, ledgerBatches, referenceChecksum, startCli, waitFor, writeBigCsv, type Checksum } from '../support/resume.js';
import { forTier } from '../support/tiers.js';

const { dir, file } = scratch('import-field');
const ROWS = 400_000;
const big = `${dir}/big.csv`;
const env = { DATAIO_LEASE_SECONDS: '3' };

async function q<R extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

const server = (url: string): TestServer => ({ name: 'tier', url });

/** dataio's own leftovers on a server: staging tables, their registry rows, prepared transactions. */
async function leftovers(url: string): Promise<{ stagings: number; registered: number; prepared: number }> {
  const [r] = await q<{ stagings: number; registered: number; prepared: number }>(
    url,
    `SELECT (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'dataio' AND c.relname LIKE 'stage\\_%' AND c.relkind = 'r') AS stagings,
            (SELECT CASE WHEN to_regclass('dataio.import_stagings') IS NULL THEN 0 ELSE (SELECT count(*)::int FROM dataio.import_stagings WHERE import_id IS NULL) END) AS registered,
            (SELECT count(*)::int FROM pg_prepared_xacts) AS prepared`,
  );
  return r as { stagings: number; registered: number; prepared: number };
}

/** The storage parameters of the staging tables of this server's imports (not resumable ones). */
async function stagingOptions(url: string): Promise<(string[] | null)[]> {
  const rows = await q<{ o: string[] | null }>(
    url,
    "SELECT c.reloptions AS o FROM dataio.import_stagings s JOIN pg_class c ON c.oid = to_regclass('dataio.' || quote_ident(s.name)) WHERE s.import_id IS NULL",
  );
  return rows.map((r) => r.o);
}

describe('imports in the field', () => {
  before(() => writeBigCsv(big, ROWS));

  forTier('pg15-default', (s) => {
    const db = ['--db', s.url, '--progress', 'none'];
    let reference: Checksum;
    before(async () => {
      reference = await referenceChecksum(server(s.url), uniqueName('ref'), big);
    });

    it('the default import is parallel and all or nothing through a staging table, with no warning', async () => {
      const t = uniqueName('f');
      await q(s.url, `CREATE TABLE ${t} (${BIG_DDL})`);
      const r = await runCli(['import', big, '--table', t, '--workers', '2', '--batch-size', '1MB', '--json', ...db]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      const out = JSON.parse(r.stdout) as { commit: string; workers: number; rows: number };
      assert.equal(out.commit, 'staging');
      assert.equal(out.workers, 2);
      assert.deepEqual(await checksum(server(s.url), t), reference);
      assert.deepEqual(await leftovers(s.url), { stagings: 0, registered: 0, prepared: 0 });
    });

    it('a bad row at 90% leaves the table as it was, naming the line', async () => {
      const t = uniqueName('f');
      await q(s.url, `CREATE TABLE ${t} (id bigint, v int)`);
      await q(s.url, `INSERT INTO ${t} VALUES (0, 0)`);
      const lines = ['id,v'];
      for (let i = 1; i <= 100_000; i++) lines.push(i === 90_000 ? `${i},ninety` : `${i},${i}`);
      const r = await runCli(['import', file(`${t}.csv`, lines.join('\n') + '\n'), '--table', t, '--workers', '2', '--batch-size', '64KB', ...db]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: import into .* failed, at input line 90001, column v: invalid input syntax for type integer: "ninety"$/m);
      assert.deepEqual(await q(s.url, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 1 }]);
      assert.deepEqual(await leftovers(s.url), { stagings: 0, registered: 0, prepared: 0 });
    });

    it('kill -9 mid-import leaves the table as it was; the next import drops the staging table left behind', async () => {
      const t = uniqueName('f');
      await q(s.url, `CREATE TABLE ${t} (${BIG_DDL})`);
      // The input comes on stdin and its last part is held back: the import is certainly under way,
      // with batches staged, when it is killed (a file may be loaded whole before a probe sees it).
      const run = startCli(['import', '-', '--table', t, '--workers', '2', '--batch-size', '256KB', ...db], env, { stdin: true });
      const data = readFileSync(big);
      run.child.stdin?.on('error', () => undefined);
      run.child.stdin?.write(data.subarray(0, Math.floor(data.length * 0.6)));
      await waitFor('rows in a staging table', async () => {
        const staged = await q<{ name: string }>(s.url, "SELECT name FROM dataio.import_stagings WHERE import_id IS NULL").catch(() => []);
        let n = 0;
        for (const { name } of staged) n += (await q<{ n: number }>(s.url, `SELECT count(*)::int AS n FROM dataio."${name}"`).catch(() => [{ n: 0 }]))[0]?.n ?? 0;
        return n > 50_000;
      });
      assert.equal(run.child.exitCode, null, 'the import ended before it could be killed');
      run.child.kill('SIGKILL');
      await run.done;
      assert.deepEqual(await q(s.url, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 0 }]);
      assert.equal((await leftovers(s.url)).stagings, 1);
      // Made without autovacuum (which would scan it beside the move, and hold up its DROP).
      assert.deepEqual(await stagingOptions(s.url), [['autovacuum_enabled=off']]);
      // Its lease runs out (or its backend is seen gone): the next import removes it.
      await sleep(3500);
      const again = await runCli(['import', big, '--table', t, '--workers', '2', ...db], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(await checksum(server(s.url), t), reference);
      assert.deepEqual(await leftovers(s.url), { stagings: 0, registered: 0, prepared: 0 });
    });

    it('--create publishes the loaded table itself: killed, it leaves no table at all', async () => {
      const t = uniqueName('f');
      const run = startCli(['import', big, '--table', t, '--create', '--workers', '2', '--batch-size', '256KB', ...db], env);
      await waitFor('a staging table', async () => (await leftovers(s.url)).stagings > 0);
      await sleep(300);
      // Loaded without autovacuum (published with it, below).
      assert.deepEqual(await stagingOptions(s.url), [['autovacuum_enabled=off']]);
      run.child.kill('SIGKILL');
      await run.done;
      assert.deepEqual(await q(s.url, 'SELECT to_regclass($1) IS NULL AS gone', [t]), [{ gone: true }]);
      const ok = await runCli(['import', big, '--table', t, '--create', '--json', ...db], { env });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((JSON.parse(ok.stdout) as { commit: string }).commit, 'staging');
      assert.deepEqual(await checksum(server(s.url), t), reference);
      assert.deepEqual(await q(s.url, 'SELECT reloptions AS o FROM pg_class WHERE oid = to_regclass($1)', [t]), [{ o: null }]);
    });

    it('--on-error skip through staging: rows the table refuses when moved (a key it has) are rejected too, exit 3', async () => {
      const t = uniqueName('f');
      await q(s.url, `CREATE TABLE ${t} (id int PRIMARY KEY, v int)`);
      await q(s.url, `INSERT INTO ${t} VALUES (500, -1), (70000, -1)`);
      const lines = ['id,v'];
      for (let i = 1; i <= 80_000; i++) lines.push(i === 1234 ? `${i},x` : `${i},${i}`);
      const input = file(`${t}.csv`, lines.join('\n') + '\n');
      const rejects = `${dir}/${t}.rejects.csv`;
      const r = await runCli(['import', input, '--table', t, '--workers', '2', '--batch-size', '64KB', '--on-error', 'skip', '--rejects', rejects, '--json', ...db]);
      assert.equal(r.code, 3, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { rejected: number }).rejected, 3);
      assert.deepEqual(await q(s.url, `SELECT count(*)::int AS n, sum(v)::bigint AS s FROM ${t}`), [{ n: 80_000 - 1, s: String(80_000 * 80_001 / 2 - 1234 - 500 - 70_000 - 2) }]);
      const { readFileSync } = await import('node:fs');
      assert.equal(readFileSync(rejects, 'utf8'), 'id,v\n1234,x\n500,500\n70000,70000\n');
      const log = readFileSync(`${rejects}.log`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(log.map((l) => l['sqlstate']), ['22P02', '23505', '23505']);
      assert.equal(log[0]?.['line'], 1235);
      assert.equal(typeof log[1]?.['batchLine'], 'number');
    });
  }, 'import');

  for (const tier of ['pgbouncer-transaction', 'pgbouncer-session'] as const) {
    forTier(tier, (s) => {
      const db = ['--db', s.url, '--progress', 'none'];
      const direct = s.directUrl as string;
      let reference: Checksum;
      before(async () => {
        reference = await referenceChecksum(server(direct), uniqueName('ref'), big);
      });

      /** Nothing of dataio's stays on the server's connections. */
      async function clean(): Promise<void> {
        assert.deepEqual(await q(direct, "SELECT locktype, pid FROM pg_locks WHERE locktype = 'advisory'"), []);
        // Many clients at once through the pooler reach every pooled server connection.
        const seen = await Promise.all(
          Array.from({ length: 12 }, () =>
            q<{ sc: string; prepared: number; temp: number }>(
              s.url,
              `SELECT current_setting('synchronous_commit') AS sc, (SELECT count(*)::int FROM pg_prepared_statements) AS prepared,
                      (SELECT count(*)::int FROM pg_class WHERE relpersistence = 't') AS temp, pg_sleep(0.05) IS NULL AS slept`,
            ),
          ),
        );
        for (const [row] of seen) assert.deepEqual({ sc: row?.sc, prepared: row?.prepared, temp: row?.temp }, { sc: 'on', prepared: 0, temp: 0 });
      }

      it('the default import, --on-error skip, an upsert: all or nothing, and nothing left on the pooled connections', async () => {
        const t = uniqueName('b');
        await q(direct, `CREATE TABLE ${t} (${BIG_DDL})`);
        const r = await runCli(['import', big, '--table', t, '--workers', '4', '--batch-size', '1MB', '--json', ...db]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal((JSON.parse(r.stdout) as { commit: string }).commit, 'staging');
        assert.deepEqual(await checksum(server(direct), t), reference);
        const bad = file(`${t}.csv`, 'id,name,amount,at,note\n900001,a,1,2024-01-01,x\n900002,b,oops,2024-01-01,y\n');
        const skip = await runCli(['import', bad, '--table', t, '--on-error', 'skip', ...db]);
        assert.equal(skip.code, 3, skip.stderr);
        await q(direct, `CREATE UNIQUE INDEX ON ${t} (id)`);
        const [had] = await q<{ n: number }>(direct, `SELECT count(*)::int AS n FROM ${t} WHERE id IN (1, 3)`);
        const up = await runCli(['import', file(`${t}-up.csv`, 'id,name\n1,one\n1,uno\n3,three\n'), '--table', t, '--on-conflict', 'update', '--key', 'id', '--json', ...db]);
        assert.equal(up.code, 0, up.stderr);
        // What the move did, counted inside its transaction (one pooled server connection throughout).
        const summary = JSON.parse(up.stdout) as { rows: number; inserted: number; updated: number };
        assert.deepEqual([summary.rows, summary.inserted, summary.updated], [3, 2 - (had?.n ?? 0), had?.n ?? 0]);
        assert.deepEqual(await q(direct, `SELECT id, name FROM ${t} WHERE id IN (1, 3) ORDER BY id`), [{ id: '1', name: 'uno' }, { id: '3', name: 'three' }]);
        await clean();
      });

      it('--import-id: rerun after completion says complete; kill -9, then the same command: every row once', async () => {
        const t = uniqueName('b');
        const args = ['import', big, '--table', t, '--create', '--import-id', t, '--workers', '2', '--batch-size', '256KB', ...db];
        const first = startCli(args, env);
        await waitFor('some batches', async () => (await ledgerBatches(server(direct), t)) >= 5);
        first.child.kill('SIGKILL');
        await first.done;
        // Behind a pooler the dead process's claims end with their lease.
        const again = await runCli(args, { env });
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(await checksum(server(direct), t), reference);
        const third = await runCli(args, { env });
        assert.equal(third.code, 0, third.stderr);
        assert.match(third.stderr, /was already complete/);
        await clean();
      });

      it('export, also over two connections, gives the table back', async () => {
        const t = uniqueName('b');
        await q(direct, `CREATE TABLE ${t} AS SELECT g AS id, 'n' || g AS name FROM generate_series(1, 20000) g`);
        for (const workers of ['1', '2']) {
          const r = await runCli(['export', '--table', t, '--workers', workers, ...db]);
          assert.equal(r.code, 0, r.stderr);
          const lines = r.stdout.trim().split('\n');
          assert.equal(lines.length, 20_001);
          assert.equal(lines[0], 'id,name');
        }
        await clean();
      });
    }, 'import');
  }
});

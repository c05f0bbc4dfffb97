/**
 * Imports on Citus (coordinator + 2 workers): all or nothing without user two-phase commit (staging
 * co-located with the table), COPY spread over the nodes, --on-error skip, --import-id after kill -9,
 * several processes each pointed at another node, reference and local tables, upsert.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import pg from 'pg';
import { scratch } from '../support/files.js';
import { runCli, uniqueName, type TestServer } from '../support/env.js';
import { BIG_DDL, checksum, ledgerBatches, startCli, waitFor, writeBigCsv, type Checksum } from '../support/resume.js';
import { tierServers, whySkipped, type TierServer } from '../support/tiers.js';

const { dir, file } = scratch('import-citus');
const ROWS = 300_000;
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

interface Summary {
  rows: number;
  earlierRows: number;
  workers: number;
  nodes: number;
  commit: string;
  rejected: number;
}

const servers = tierServers('citus');
if (servers.length === 0) it('citus tier', { skip: whySkipped('citus') }, () => undefined);

for (const s of servers as TierServer[]) {
  const coord: TestServer = { name: 'citus', url: s.url };
  const db = (url = s.url) => ['--db', url, '--progress', 'none', '--json'];
  const workers = s.workers ?? [];

  async function distributed(ddl = BIG_DDL, column = 'id'): Promise<string> {
    const t = uniqueName('c');
    await q(s.url, `CREATE TABLE ${t} (${ddl})`);
    await q(s.url, `SELECT create_distributed_table($1, $2)`, [t, column]);
    return t;
  }

  describe('imports on Citus', () => {
    let reference: Checksum;
    before(async () => {
      writeBigCsv(big, ROWS);
      const t = await distributed();
      await q(s.url, `COPY ${t} FROM '${big}' (FORMAT csv, HEADER)`);
      reference = await checksum(coord, t);
      assert.equal(reference.rows, ROWS);
    });

    it('the default import into a distributed table: parallel over the nodes, through staging, every row once', async () => {
      const t = await distributed();
      const r = await runCli(['import', big, '--table', t, '--workers', '3', '--batch-size', '1MB', ...db()]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as Summary;
      assert.deepEqual([out.commit, out.workers, out.nodes], ['staging', 3, 3]);
      assert.deepEqual(await checksum(coord, t), reference);
      assert.deepEqual(await q(s.url, "SELECT count(*)::int AS n FROM pg_dist_partition WHERE logicalrelid::text LIKE 'dataio.stage%'"), [{ n: 0 }]);
      // --nodes none: every connection to the coordinator; named URLs: to those.
      const t2 = await distributed();
      const none = await runCli(['import', big, '--table', t2, '--workers', '2', '--batch-size', '1MB', '--nodes', 'none', ...db()]);
      assert.equal(none.code, 0, none.stderr);
      assert.equal((JSON.parse(none.stdout) as Summary).nodes, 1);
      const t3 = await distributed();
      const named = await runCli(['import', big, '--table', t3, '--workers', '2', '--batch-size', '1MB', '--nodes', workers.join(','), ...db()]);
      assert.equal(named.code, 0, named.stderr);
      assert.equal((JSON.parse(named.stdout) as Summary).nodes, 2);
      assert.deepEqual(await checksum(coord, t3), reference);
    });

    it('a bad row at 90% leaves the distributed table as it was', async () => {
      const t = await distributed('id bigint, v int');
      await q(s.url, `INSERT INTO ${t} VALUES (0, 0)`);
      const lines = ['id,v'];
      for (let i = 1; i <= 50_000; i++) lines.push(i === 45_000 ? `${i},bad` : `${i},${i}`);
      const r = await runCli(['import', file(`${t}.csv`, lines.join('\n') + '\n'), '--table', t, '--workers', '3', '--batch-size', '64KB', ...db()]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: import into .* failed, at input line 45001, column v: invalid input syntax for type integer: "bad"$/m);
      assert.deepEqual(await q(s.url, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 1 }]);
    });

    it('reference tables, Citus local tables and plain tables on the coordinator load too; --create makes a table', async () => {
      const ref = uniqueName('ref');
      await q(s.url, `CREATE TABLE ${ref} (${BIG_DDL})`);
      await q(s.url, `SELECT create_reference_table($1)`, [ref]);
      const plain = uniqueName('plain');
      await q(s.url, `CREATE TABLE ${plain} (${BIG_DDL})`);
      const made = uniqueName('made');
      for (const [t, extra] of [[ref, []], [plain, []], [made, ['--create']]] as const) {
        const r = await runCli(['import', big, '--table', t, '--workers', '2', '--batch-size', '1MB', ...extra, ...db()]);
        assert.equal(r.code, 0, `${t}: ${r.stderr}`);
        assert.deepEqual((await checksum(coord, t)).rows, ROWS);
      }
      assert.deepEqual(await checksum(coord, ref), reference);
    });

    it('--on-error skip on a distributed table: bad values and keys the table has are rejected exactly, exit 3', async () => {
      const t = await distributed('id bigint PRIMARY KEY, v int');
      await q(s.url, `INSERT INTO ${t} VALUES (777, -1)`);
      const lines = ['id,v'];
      for (let i = 1; i <= 30_000; i++) lines.push(i % 10_000 === 5 ? `${i},x${i}` : `${i},${i}`);
      const rejects = `${dir}/${t}.rejects.csv`;
      const r = await runCli(['import', file(`${t}.csv`, lines.join('\n') + '\n'), '--table', t, '--on-error', 'skip', '--rejects', rejects, '--workers', '3', '--batch-size', '32KB', ...db()]);
      assert.equal(r.code, 3, r.stderr);
      assert.equal((JSON.parse(r.stdout) as Summary).rejected, 4);
      assert.equal(readFileSync(rejects, 'utf8'), 'id,v\n5,x5\n10005,x10005\n20005,x20005\n777,777\n');
      assert.deepEqual(await q(s.url, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 30_000 - 3 }]);
      assert.deepEqual(await q(s.url, `SELECT v FROM ${t} WHERE id = 777`), [{ v: -1 }]);
    });

    it('--import-id: kill -9, then the same command loads the rest exactly once', async () => {
      const t = await distributed();
      const args = ['import', big, '--table', t, '--import-id', t, '--workers', '2', '--batch-size', '256KB', ...db()];
      const first = startCli(args, env);
      await waitFor('some batches', async () => (await ledgerBatches(coord, t)) >= 5);
      assert.equal(first.child.exitCode, null, 'the import ended before it could be killed');
      first.child.kill('SIGKILL');
      await first.done;
      const again = await runCli(args, { env });
      assert.equal(again.code, 0, again.stderr);
      const out = JSON.parse(again.stdout) as Summary;
      assert.equal(out.commit, 'resumable');
      assert.ok(out.earlierRows > 0 && out.rows + out.earlierRows === ROWS, again.stdout);
      assert.deepEqual(await checksum(coord, t), reference);
    });

    it('three processes, each pointed at another node, share one import; one killed, the others finish it exactly once', async () => {
      const t = await distributed();
      const urls = [s.url, ...workers];
      const args = (url: string) => ['import', big, '--table', t, '--import-id', t, '--workers', '1', '--batch-size', '128KB', ...db(url)];
      const runs = urls.map((u) => startCli(args(u), env));
      await waitFor('some batches', async () => (await ledgerBatches(coord, t)) >= 6);
      const victim = runs[1];
      assert.equal(victim?.child.exitCode, null, 'the process ended before it could be killed');
      victim?.child.kill('SIGKILL');
      const done = await Promise.all(runs.map((r) => r.done));
      const alive = [done[0], done[2]];
      for (const d of alive) assert.equal(d?.code, 0, d?.stderr);
      const own = alive.map((d) => (JSON.parse(d?.stdout ?? '{}') as Summary).rows);
      assert.ok(own.every((n) => n > 0), `each live process loaded some: ${own.join(', ')}`);
      assert.deepEqual(await checksum(coord, t), reference);
    });

    it('upsert into a distributed table: the last row of a key wins, existing rows updated', async () => {
      const t = await distributed('id bigint PRIMARY KEY, v text');
      await q(s.url, `INSERT INTO ${t} SELECT g, 'old' FROM generate_series(1, 1000) g`);
      const lines = ['id,v'];
      for (let i = 1; i <= 20_000; i++) lines.push(`${i},first`);
      for (let i = 1; i <= 20_000; i += 2) lines.push(`${i},second`);
      const r = await runCli(['import', file(`${t}.csv`, lines.join('\n') + '\n'), '--table', t, '--on-conflict', 'update', '--workers', '3', '--batch-size', '32KB', ...db()]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await q(s.url, `SELECT count(*)::int AS n, count(*) FILTER (WHERE v = 'second')::int AS second, count(*) FILTER (WHERE v = 'old')::int AS old FROM ${t}`), [
        { n: 20_000, second: 10_000, old: 0 },
      ]);
    });
  });
}

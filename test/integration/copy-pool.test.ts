/**
 * The COPY connection pool against a real server: connections opened early and then not needed are
 * closed (limit), and the final COMMIT PREPARED runs on each worker's own connection, handing back the
 * ones a lost connection could not commit, and never touching a connection that opened after PREPARE.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CopyPool } from '../../src/import/load/copy-pool.js';
import { query, testServers, uniqueName, type TestServer } from '../support/env.js';

/** Our pool's connections, as the server sees them. */
async function poolBackends(server: TestServer): Promise<number> {
  const r = await query<{ n: number }>(server, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'dataio import'");
  return r[0]?.n ?? 0;
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await sleep(25);
  }
  assert.fail(`timed out waiting for ${what}`);
}

for (const server of testServers()) {
  describe(`COPY pool on ${server.name}`, () => {
    const target = { clientConfig: { connectionString: server.url }, display: server.name, local: true };

    it('limit() closes the idle connections beyond the new count', async () => {
      const pool = new CopyPool({ targets: [target], maxWorkers: 3, warn: () => undefined });
      pool.configure({ transactions: 'import' });
      try {
        pool.prewarm();
        await until('3 connections', async () => pool.size === 3 && (await poolBackends(server)) >= 3);
        const before = await poolBackends(server);
        pool.limit(1);
        assert.equal(pool.size, 1);
        await until('2 backends to go', async () => (await poolBackends(server)) === before - 2);
        // prewarm() respects the limit: no connection beyond it is opened again.
        pool.prewarm();
        assert.equal(pool.claimed, 1);
      } finally {
        await pool.rollback();
        await pool.close();
      }
    });

    it('commitPrepared() commits on each worker and hands back what a lost connection could not', async () => {
      const t = uniqueName('cp');
      await query(server, `CREATE TABLE ${t} (w int)`);
      const pool = new CopyPool({ targets: [target], maxWorkers: 3, warn: () => undefined });
      pool.configure({ transactions: 'import' });
      const gid = (w: number) => `dataio_test_${t}_${w}`;
      try {
        // One row per connection, each in its connection's open transaction.
        await Promise.all([0, 1].map(() => pool.run({ chunks: [], firstLine: 1 }, (c) => c.query(`INSERT INTO ${t} VALUES (pg_backend_pid())`).then(() => sleep(100)))));
        assert.equal(pool.size, 2);
        await pool.prepare(gid);
        // A connection that opens after PREPARE has nothing to commit.
        pool.prewarm();
        await until('a third connection', async () => pool.size === 3);
        // The first worker's connection dies after its PREPARE: its transaction stays prepared.
        const [first] = pool.backends();
        await query(server, 'SELECT pg_terminate_backend($1)', [first?.pid]);
        await sleep(200);
        const left = await pool.commitPrepared();
        assert.equal(left.length, 1);
        assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 1 }]);
        assert.deepEqual(await query(server, 'SELECT gid FROM pg_prepared_xacts WHERE gid = $1', [left[0]]), [{ gid: left[0] }]);
        await query(server, `COMMIT PREPARED '${left[0]}'`);
        assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 2 }]);
      } finally {
        for (const w of [0, 1, 2]) await query(server, `ROLLBACK PREPARED '${gid(w)}'`).catch(() => undefined);
        await pool.close();
      }
    });
  });
}

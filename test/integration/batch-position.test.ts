/**
 * The staging tables' batch column default (batch-position.ts): dataio.batch_position() is folded into
 * a constant once per COPY, so each COPY's rows take the batch its transaction set, and two COPYs in
 * one transaction take one value each. Were PostgreSQL to fold it when the table is made, or to keep
 * the value from one COPY to the next, the rows below would say so.
 */
import assert from 'node:assert/strict';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { batchDefault } from '../../src/import/commit/batch-position.js';
import { ensureStagingRegistry } from '../../src/import/commit/staging.js';
import { testServers, uniqueName } from '../support/env.js';

async function copy(c: pg.Client, table: string, rows: string): Promise<void> {
  await pipeline(Readable.from([rows]), c.query(copyFrom(`COPY ${table} (v) FROM STDIN`)));
}

for (const server of testServers()) {
  describe(`the staged batch position on ${server.name}`, () => {
    it('takes, per COPY, the batch its transaction set', async () => {
      const c = new pg.Client({ connectionString: server.url });
      await c.connect();
      const t = uniqueName('bp');
      try {
        await ensureStagingRegistry(c, false);
        await ensureStagingRegistry(c, false); // present now: nothing to make
        await c.query(`CREATE TABLE ${t} (v int, b bigint NOT NULL DEFAULT ${batchDefault(true)})`);
        await c.query('BEGIN; SET LOCAL dataio.batch = 5');
        await copy(c, t, '1\n2\n3\n');
        await c.query('SET LOCAL dataio.batch = 6');
        await copy(c, t, '4\n');
        await c.query('COMMIT');
        await c.query('BEGIN; SET LOCAL dataio.batch = 7');
        await copy(c, t, '5\n6\n');
        await c.query('COMMIT');
        const r = await c.query<{ v: number; b: string }>(`SELECT v, b FROM ${t} ORDER BY v`);
        assert.deepEqual(r.rows.map((x) => [x.v, Number(x.b)]), [[1, 5], [2, 5], [3, 5], [4, 6], [5, 7], [6, 7]]);
        // Without a batch set, the COPY fails (as the per-row default did): no row takes a stale value.
        await assert.rejects(copy(c, t, '7\n'), /dataio\.batch|type bigint/);
      } finally {
        await c.query(`DROP TABLE IF EXISTS ${t}`).catch(() => undefined);
        await c.end();
      }
    });
  });
}

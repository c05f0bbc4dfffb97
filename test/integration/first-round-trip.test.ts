/**
 * What an import asks before its first COPY, on real servers: serverFacts and the table's lookup in one
 * message (the same answers as lookupTable), the free connections counted only when asked, the
 * staging leftovers seen where a staging table is.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ensureStagingRegistry } from '../../src/import/commit/staging.js';
import { lookupTable } from '../../src/pg/catalog.js';
import { STAGING_PREFIX } from '../../src/pg/dataio-schema.js';
import { serverFacts } from '../../src/pg/server.js';
import { query, testServers, uniqueName, withClient } from '../support/env.js';

for (const server of testServers()) {
  describe(`the first round trip of an import on ${server.name}`, () => {
    it("answers the facts and the table's lookup together, as lookupTable does", async () => {
      await withClient(server, async (c) => {
        const t = uniqueName('facts');
        await c.query(`CREATE TABLE ${t} (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(10,2))`);
        try {
          const name = { name: t };
          const facts = await serverFacts(c, { connections: false, table: name });
          assert.deepEqual(facts.table, { info: await lookupTable(c, name) });
          assert.deepEqual(facts.table?.info?.primaryKey, ['id']);
          assert.deepEqual(facts.table?.info?.columns.map((x) => x.type), ['bigint', 'text', 'numeric(10,2)']);
          assert.equal(facts.freeConnections, undefined);
          assert.equal(facts.citus, false);
          assert.ok(facts.version >= 110000);
          const missing = await serverFacts(c, { connections: true, table: { name: uniqueName('none') } });
          assert.deepEqual(missing.table, { info: undefined });
          assert.equal(typeof missing.freeConnections, 'number');
          assert.equal((await serverFacts(c)).table, undefined);
        } finally {
          await c.query(`DROP TABLE ${t}`);
        }
      });
    });

    it('sees staging leftovers where a staging table is', async () => {
      await withClient(server, async (c) => {
        await ensureStagingRegistry(c, false);
        const stage = `${STAGING_PREFIX}${uniqueName('test')}`;
        await c.query(`CREATE TABLE dataio.${stage} (v int)`);
        try {
          assert.equal((await serverFacts(c, { connections: false })).stagingLeftovers, true);
        } finally {
          await c.query(`DROP TABLE dataio.${stage}`);
        }
        // A name that only begins like one (the range ends where the prefix does) is no staging table.
        const other = `${STAGING_PREFIX.slice(0, -1)}a_${uniqueName('x')}`;
        await c.query(`CREATE TABLE dataio.${other} (v int)`);
        try {
          const [row] = await query<{ n: number }>(server, `SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'dataio'::regnamespace AND relname LIKE $1`, [`${STAGING_PREFIX.replace('_', '\\_')}%`]);
          // Other tests' imports may stage meanwhile: only without any staging table is "none" certain.
          if (row?.n === 0) assert.equal((await serverFacts(c, { connections: false })).stagingLeftovers, false);
        } finally {
          await c.query(`DROP TABLE dataio.${other}`);
        }
      });
    });
  });
}

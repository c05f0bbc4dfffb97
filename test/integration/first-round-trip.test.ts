/**
 * What an import asks before its first COPY, on real servers: serverFacts and the table's lookup in one
 * message (the same answers as lookupTable), the free connections counted only when asked, the
 * staging leftovers seen where a staging table is; and a connection opened ahead of its use.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { ensureStagingRegistry } from '../../src/import/commit/staging.js';
import { ensureDecisionTable } from '../../src/import/commit/two-phase.js';
import { lookupTable } from '../../src/pg/catalog.js';
import { connectAhead, targetOfUrl } from '../../src/pg/connect.js';
import { STAGING_PREFIX } from '../../src/pg/dataio-schema.js';
import { DataioError } from '../../src/errors.js';
import { serverFacts } from '../../src/pg/server.js';
import { query, testServers, uniqueName, withClient, withUrlPath } from '../support/env.js';

async function backends(url: string, applicationName: string): Promise<number> {
  const [row] = await query<{ n: number }>({ name: 'count', url }, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
  return row?.n ?? -1;
}

for (const server of testServers()) {
  describe(`the first round trip of an import on ${server.name}`, () => {
    it("answers the facts and the table's lookup together, as lookupTable does", async () => {
      await withClient(server, async (c) => {
        const t = uniqueName('facts');
        await c.query(`CREATE TABLE ${t} (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(10,2))`);
        try {
          const name = { name: t };
          const looked = await lookupTable(c, name);
          const facts = await serverFacts(c, { connections: false, table: name, primaryKey: true });
          assert.deepEqual(facts.table, { info: looked });
          assert.deepEqual(facts.table?.info?.primaryKey, ['id']);
          assert.deepEqual(facts.table?.info?.columns.map((x) => x.type), ['bigint', 'text', 'numeric(10,2)']);
          assert.equal(facts.freeConnections, undefined);
          // Without the key (an import that is no upsert): the same, the key not looked up.
          const { primaryKey: _key, ...rest } = looked ?? { primaryKey: undefined };
          assert.deepEqual((await serverFacts(c, { connections: false, table: name })).table, { info: rest });
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

    it("says whether the two-phase commit's decision table is there, with the free connections only", async () => {
      await withClient(server, async (c) => {
        await ensureDecisionTable(c);
        assert.equal((await serverFacts(c)).decisionTable, true);
        assert.equal((await serverFacts(c, { connections: false })).decisionTable, undefined);
      });
      // A role that may not use dataio's schema: not there for it (and the facts still answer).
      const role = uniqueName('nodecide');
      await query(server, `CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
      try {
        const c = new pg.Client({ connectionString: withUrlPath(server.url, new URL(server.url).pathname.slice(1), { name: role, password: 'pw' }) });
        await c.connect();
        try {
          assert.equal((await serverFacts(c)).decisionTable, false);
        } finally {
          await c.end();
        }
      } finally {
        await query(server, `DROP ROLE ${role}`);
      }
    });

    it('opens a connection ahead: taken once, dropped when untaken, a failure to whoever takes it', async () => {
      const name = uniqueName('ahead');
      const target = targetOfUrl(server.url);
      const ahead = await connectAhead(target, name);
      const taken = ahead.take();
      assert.ok(taken !== undefined);
      assert.equal(ahead.take(), undefined);
      const client: pg.Client = await taken;
      try {
        assert.deepEqual((await client.query<{ n: string }>('SELECT current_setting($1) AS n', ['application_name'])).rows, [{ n: name }]);
        ahead.drop(); // taken: not the dropper's to close
        assert.deepEqual((await client.query<{ one: number }>('SELECT 1 AS one')).rows, [{ one: 1 }]);
      } finally {
        await client.end();
      }

      const unused = uniqueName('unused');
      const dropped = await connectAhead(target, unused);
      dropped.drop();
      assert.equal(dropped.take(), undefined);
      // Long enough for it to have connected (tens of milliseconds here): had drop() not closed it, it would show.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await backends(server.url, unused), 0);

      const u = new URL(server.url);
      u.port = '1';
      const failing = await connectAhead(targetOfUrl(u.toString()), uniqueName('fails'));
      // No one has taken it yet: its failure must not be an unhandled rejection meanwhile.
      await new Promise((r) => setTimeout(r, 100));
      await assert.rejects(failing.take() as Promise<pg.Client>, (err) => err instanceof DataioError);
    });
  });
}

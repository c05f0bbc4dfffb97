/**
 * A busy server: dataio waits (with backoff) while the server has no connection for it, instead of
 * failing at once, and fails with one line when it never gets one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { scratch } from '../support/files.js';
import { query, runCli, testServers, uniqueName } from '../support/env.js';

const { file } = scratch('retry');

for (const server of testServers()) {
  describe(`connecting to a busy server (${server.name})`, () => {
    it('waits for a free connection slot, then loads', async () => {
      const role = uniqueName('r');
      const t = uniqueName('busy');
      await query(server, `CREATE ROLE ${role} LOGIN PASSWORD 'pw' CONNECTION LIMIT 2`);
      await query(server, `CREATE TABLE ${t} (id int)`);
      await query(server, `GRANT ALL ON ${t} TO ${role}`);
      const u = new URL(server.url);
      u.username = role;
      u.password = 'pw';
      // dataio needs two connections (the coordinator and one worker): hold both slots for a while.
      const holders = [new pg.Client({ connectionString: u.toString() }), new pg.Client({ connectionString: u.toString() })];
      for (const h of holders) await h.connect();
      const released = new Promise((r) => setTimeout(r, 1200)).then(() => Promise.all(holders.map((h) => h.end())));
      const r = await runCli(['import', file('a.csv', 'id\n1\n2\n'), '--table', t, '--workers', '1', '--db', u.toString(), '--progress', 'none']);
      await released;
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 2 }]);
      await query(server, `DROP TABLE ${t}`);
      await query(server, `DROP ROLE ${role}`);
    });
  });
}

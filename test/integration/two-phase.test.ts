/**
 * The crash-safe final commit: a multi-connection import leaves no prepared transaction behind, and
 * what a crashed import left prepared is committed (decision recorded) or rolled back (none) by the
 * next import, unless that import's coordinator is still alive.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { beginDecision, decideCommit, DECISIONS, ensureDecisionTable, gidFor, newImportId } from '../../src/import/commit/two-phase.js';
import { holderOf } from '../../src/pg/lease.js';
import { scratch } from '../support/files.js';
import { query, runCli, testServers, uniqueName } from '../support/env.js';

const { file } = scratch('2pc');

async function prepared(url: string, table: string, id: number, gid: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query(`INSERT INTO ${table} VALUES ($1)`, [id]);
    await c.query(`PREPARE TRANSACTION '${gid}'`);
  } finally {
    await c.end();
  }
}

for (const server of testServers()) {
  describe(`two-phase commit on ${server.name}`, () => {
    it('a decision is taken once, by the holder of the preparing row, and a failed one leaves the session usable', async () => {
      const c = new pg.Client({ connectionString: server.url });
      await c.connect();
      try {
        await ensureDecisionTable(c);
        const holder = await holderOf(c);
        const other = await holderOf(c);
        const id = newImportId();
        // Nothing prepares under this id: nothing to decide.
        assert.equal(await decideCommit(c, id, holder), false);
        await beginDecision(c, id, holder);
        // Another process cannot decide it; its holder can, once.
        assert.equal(await decideCommit(c, id, other), false);
        assert.equal(await decideCommit(c, id, holder), true);
        assert.equal(await decideCommit(c, id, holder), false);
        assert.deepEqual((await c.query(`SELECT state FROM ${DECISIONS} WHERE import_id = $1`, [id])).rows, [{ state: 'decided' }]);
        // A second preparing row for the same id fails (primary key) and the session stays usable.
        await assert.rejects(beginDecision(c, id, holder), /duplicate key/);
        assert.deepEqual((await c.query('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
        await c.query(`DELETE FROM ${DECISIONS} WHERE import_id = $1`, [id]);
      } finally {
        await c.end();
      }
    });

    it('a multi-connection import leaves no prepared transaction or decision behind', async () => {
      const t = uniqueName('tp');
      await query(server, `CREATE TABLE ${t} (id int, name text)`);
      let csv = 'id,name\n';
      for (let i = 1; i <= 3000; i++) csv += `${i},n${i}\n`;
      const r = await runCli(['import', file('a.csv', csv), '--table', t, '--workers', '4', '--batch-size', '1KB', '--db', server.url, '--progress', 'none', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { workers: number }).workers, 4);
      assert.doesNotMatch(r.stderr, /not crash-safe/);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 3000 }]);
      assert.deepEqual(await query(server, "SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'dataio%'"), []);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${DECISIONS}`), [{ n: 0 }]);
    });

    it('the next import settles what a crashed one left: commit when decided, roll back when not, a live one untouched', async () => {
      const t = uniqueName('left');
      await query(server, `CREATE TABLE ${t} (id int)`);
      const decided = newImportId();
      const undecided = newImportId();
      const alive = newImportId();
      await prepared(server.url, t, 1, gidFor(decided, 0));
      await prepared(server.url, t, 2, gidFor(decided, 1));
      await query(server, `INSERT INTO ${DECISIONS} (import_id, state) VALUES ($1, 'decided')`, [decided]);
      await prepared(server.url, t, 3, gidFor(undecided, 0));
      await prepared(server.url, t, 4, gidFor(undecided, 1));
      // An import still preparing: its coordinator's connection is alive and its lease runs.
      const holder = new pg.Client({ connectionString: server.url });
      await holder.connect();
      try {
        await beginDecision(holder, alive, await holderOf(holder));
        // An import whose lease ran out while preparing: its process is gone, it is rolled back.
        const gone = newImportId();
        await query(server, `INSERT INTO ${DECISIONS} (import_id, state, owner, lease_until) VALUES ($1, 'preparing', 'x', now() - interval '1 second')`, [gone]);
        await prepared(server.url, t, 6, gidFor(gone, 0));
        await prepared(server.url, t, 5, gidFor(alive, 0));
        const other = uniqueName('o');
        await query(server, `CREATE TABLE ${other} (id int)`);
        const r = await runCli(['import', file('o.csv', 'id\n1\n'), '--table', other, '--db', server.url, '--progress', 'none']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /finished the commit of an interrupted import \(2 prepared transactions\)/);
        assert.match(r.stderr, /rolled back an interrupted import \(3 prepared transactions\)/);
        assert.deepEqual(await query(server, `SELECT id FROM ${t} ORDER BY id`), [{ id: 1 }, { id: 2 }]);
        assert.deepEqual(await query(server, "SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'dataio%'"), [{ gid: gidFor(alive, 0) }]);
        assert.deepEqual(await query(server, `SELECT import_id FROM ${DECISIONS} WHERE import_id = ANY($1)`, [[decided, gone]]), []);
      } finally {
        await query(server, `ROLLBACK PREPARED '${gidFor(alive, 0)}'`).catch(() => undefined);
        await query(server, `DELETE FROM ${DECISIONS} WHERE import_id = $1`, [alive]);
        await holder.end();
      }
    });
  });
}

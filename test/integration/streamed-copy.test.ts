/**
 * A connection's batches share one COPY (src/import/load/streamed-copy.ts), against real servers. A
 * statement-level trigger counts the COPY statements the server ran: one per connection (and per
 * MAX_BATCHES batches, per line ending, and after a file without a final line ending) where the mode
 * allows it, one per batch where it does not (staging). Rows exact, a failing line named exactly,
 * nothing left behind; a `\.` that would end the data on that server refused (the text format; CSV
 * before PostgreSQL 18).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { importInputs, type ImportResult } from '../../src/import/import.js';
import { MAX_BATCHES } from '../../src/import/load/streamed-copy.js';
import type { ConnectionTarget } from '../../src/pg/connect.js';
import { DataioError } from '../../src/errors.js';
import { scratch } from '../support/files.js';
import { clientForSuite, testServers, uniqueName } from '../support/env.js';
import { importOptions, quietHooks } from '../support/import-options.js';

const { file } = scratch('streamed');
const hooks = quietHooks;
const opts = importOptions;

/** `n` CSV rows (a quoted newline in every 7th), ids from `from`; line `bad` (1-based data row) gets a bad id. */
function csv(n: number, o: { from?: number; bad?: number; header?: boolean; finalNewline?: boolean } = {}): string {
  const rows: string[] = o.header === false ? [] : ['id,note'];
  for (let i = 0; i < n; i++) {
    const id = (o.from ?? 1) + i;
    rows.push(`${i + 1 === o.bad ? 'oops' : id},${id % 7 === 0 ? `"two\nlines ${id}"` : `note ${id}`}`);
  }
  return rows.join('\n') + (o.finalNewline === false ? '' : '\n');
}

for (const server of testServers()) {
  describe(`batches sharing a COPY on ${server.name}`, () => {
    const target: ConnectionTarget = { clientConfig: { connectionString: server.url }, display: server.name, local: true };
    let client!: pg.Client;
    clientForSuite(server.url, (c) => (client = c));

    /** A table whose every INSERT or COPY statement adds a row to `<table>_stmts`. */
    async function counted(): Promise<string> {
      const t = uniqueName('sc');
      await client.query(`CREATE TABLE ${t} (id int, note text);
        CREATE TABLE ${t}_stmts (at timestamptz DEFAULT now());
        CREATE FUNCTION ${t}_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ${t}_stmts DEFAULT VALUES; RETURN NULL; END $$;
        CREATE TRIGGER ${t}_count AFTER INSERT ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION ${t}_count();`);
      return t;
    }
    const statements = async (t: string) => Number((await client.query(`SELECT count(*) AS n FROM ${t}_stmts`)).rows[0].n);
    const rows = async (t: string) => Number((await client.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);

    it('runs one COPY per connection over many batches, with exact rows', async () => {
      const input = file('many.csv', csv(20_000));
      for (const workers of [1, 2]) {
        const t = await counted();
        const r: ImportResult = await importInputs(target, opts([input], t, workers, 8 * 1024), hooks);
        assert.equal(r.rows, 20_000);
        assert.equal(await rows(t), 20_000);
        assert.ok(r.batches > 20, `${r.batches} batches`);
        const n = await statements(t);
        if (r.commit === 'staging') assert.equal(n, r.batches, 'staging commits each batch: a COPY each');
        else assert.ok(n >= 1 && n <= r.workers, `${r.commit}, ${r.workers} workers: ${n} COPY statements for ${r.batches} batches`);
      }
    });

    it(`ends a COPY after ${MAX_BATCHES} batches, and after a file without a final line ending`, async () => {
      const t = await counted();
      const a = file('a.csv', csv(25_000, { finalNewline: false }));
      const b = file('b.csv', csv(1_000, { from: 25_001 }));
      const r = await importInputs(target, opts([a, b], t, 1, 1024), hooks);
      assert.equal(r.rows, 26_000);
      assert.deepEqual((await client.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, min(id) AS lo, max(id) AS hi FROM ${t}`)).rows, [{ n: 26_000, d: 26_000, lo: 1, hi: 26_000 }]);
      assert.ok(r.batches > MAX_BATCHES + 50 && r.batches < 2 * MAX_BATCHES, `${r.batches} batches`);
      // a.csv: its batches over two COPYs (MAX_BATCHES, then the rest, ended by its last line); b.csv: a third.
      assert.equal(await statements(t), 3);
    });

    it('lets the small files of one import share a COPY when their lines end alike, and names a bad line by its file', async () => {
      const lf = Array.from({ length: 30 }, (_, i) => file(`s${String(i).padStart(2, '0')}.csv`, csv(100, { from: i * 100 + 1 })));
      const crlf = file('s99.csv', csv(100, { from: 3001 }).replace(/\n/g, '\r\n'));
      const t = await counted();
      const r = await importInputs(target, opts([...lf, crlf], t, 1, 8 * 1024), hooks);
      assert.equal(r.rows, 3100);
      assert.deepEqual((await client.query(`SELECT count(DISTINCT id)::int AS d, min(id) AS lo, max(id) AS hi FROM ${t}`)).rows, [{ d: 3100, lo: 1, hi: 3100 }]);
      // The 30 LF files' batches (small ones joined) in one COPY; the CRLF file in one of its own.
      assert.equal(await statements(t), 2);
      const bad = file('s15.csv', csv(100, { from: 1501, bad: 42 }));
      // The header, 41 rows before the bad one, and a second line for each of them whose id is a multiple of 7.
      const twoLineRowsBefore = Array.from({ length: 41 }, (_, k) => 1501 + k).filter((id) => id % 7 === 0).length;
      const u = await counted();
      await assert.rejects(importInputs(target, opts([...lf.slice(0, 15), bad, ...lf.slice(16)], u, 2, 8 * 1024), hooks), (err: unknown) => {
        assert.ok(err instanceof DataioError);
        assert.match(err.message, new RegExp(`at ${bad.replace(/[.]/g, '\\.')}, line ${42 + 1 + twoLineRowsBefore}, column id: invalid input syntax`));
        return true;
      });
      assert.equal(await rows(u), 0);
    });

    it('names the exact input line of a bad value in a late batch, and leaves nothing behind', async () => {
      const input = file('bad.csv', csv(20_000, { bad: 18_765 }));
      for (const workers of [1, 2]) {
        const t = await counted();
        await assert.rejects(importInputs(target, opts([input], t, workers, 8 * 1024), hooks), (err: unknown) => {
          assert.ok(err instanceof DataioError);
          // Line 1 is the header, and every 7th row before it spans two lines.
          const line = 18_765 + 1 + Math.floor(18_764 / 7);
          assert.match(err.message, new RegExp(`at input line ${line}, column id: invalid input syntax for type integer: "oops"`));
          assert.equal(err.line, line);
          return true;
        });
        assert.equal(await rows(t), 0);
      }
    });

    it("refuses a text-format line that holds only \\., which would end the data; a trailing one is the file's end", async () => {
      const t = uniqueName('st');
      await client.query(`CREATE TABLE ${t} (id int, note text)`);
      const lines = Array.from({ length: 3000 }, (_, i) => `${i + 1}\tn${i + 1}`);
      const middle = file('mid.tsv', [...lines.slice(0, 2500), '\\.', ...lines.slice(2500)].join('\n') + '\n');
      for (const workers of [1, 2]) {
        await assert.rejects(importInputs(target, opts([middle], t, workers, 4096, 'tsv'), hooks), /input line 2501 holds only \\\., which ends the data/);
        assert.equal(await rows(t), 0);
      }
      const trailing = file('end.tsv', [...lines, '\\.'].join('\n') + '\n');
      const r = await importInputs(target, opts([trailing], t, 2, 4096, 'tsv'), hooks);
      assert.equal(r.rows, 3000);
      assert.equal(await rows(t), 3000);
    });

    const version = async () => Number((await client.query('SHOW server_version_num')).rows[0].server_version_num);

    it('refuses a text-format line ending with \\. before PostgreSQL 18 (which would end the data there), nothing lost either way', async () => {
      const t = uniqueName('st');
      await client.query(`CREATE TABLE ${t} (id int, note text)`);
      const lines = Array.from({ length: 3000 }, (_, i) => `${i + 1}\tn${i + 1}`);
      const input = file('tail.tsv', [...lines.slice(0, 1500), '1501\tends \\\\ then \\.', ...lines.slice(1501)].join('\n') + '\n');
      const old = (await version()) < 180000;
      for (const workers of [1, 2]) {
        // PostgreSQL 18 refuses it itself ("not alone on its line"); 15 would load 1,501 rows of 3,000, without an error.
        await assert.rejects(importInputs(target, opts([input], t, workers, 4096, 'tsv'), hooks), old ? /input line 1501 ends with \\\., which ends the data in PostgreSQL's text format before version 18/ : /line 1501/);
        assert.equal(await rows(t), 0);
      }
      // An escaped backslash before the dot is a value on every server.
      const escaped = file('escaped.tsv', [...lines.slice(0, 1500), '1501\tends \\\\.', ...lines.slice(1501)].join('\n') + '\n');
      assert.equal((await importInputs(target, opts([escaped], t, 2, 4096, 'tsv'), hooks)).rows, 3000);
      assert.equal((await client.query(`SELECT note FROM ${t} WHERE id = 1501`)).rows[0].note, 'ends \\.');
      // As a file's last line too (before 18 its value would lose the \.; 18 refuses it): said without lines after it.
      await client.query(`TRUNCATE ${t}`);
      const lastLine = file('last.tsv', [...lines.slice(0, 2999), '3000\tends \\.'].join('\n') + '\n');
      const err = await importInputs(target, opts([lastLine], t, 2, 4096, 'tsv'), hooks).then(
        () => assert.fail('imported'),
        (e: unknown) => e as Error,
      );
      if (old) assert.match(err.message, /input line 3000 ends with \\\., which ends the data in PostgreSQL's text format before version 18$/);
      else assert.match(err.message, /line 3000/);
      assert.equal(await rows(t), 0);
    });

    it('refuses a CSV record that is only \\. before PostgreSQL 18 (where it ends the data), loads it as a value from 18 on; a quoted line \\. is a value everywhere', async () => {
      const t = uniqueName('st');
      await client.query(`CREATE TABLE ${t} (v text)`);
      const values = Array.from({ length: 3000 }, (_, i) => (i % 11 === 0 ? `"two\nlines ${i}"` : `v${i}`));
      const input = file('dot.csv', ['v', ...values.slice(0, 2000), '\\.', ...values.slice(2000)].join('\n') + '\n');
      const old = (await version()) < 180000;
      // The header, 2,000 values (some of two lines), then it.
      const line = 1 + 2000 + values.slice(0, 2000).filter((v) => v.includes('\n')).length + 1;
      for (const workers of [1, 2]) {
        if (old) {
          await assert.rejects(importInputs(target, opts([input], t, workers, 4096, 'csv'), hooks), new RegExp(`input line ${line} holds only \\\\\\., which ends the data in CSV on PostgreSQL 17 and older`));
          assert.equal(await rows(t), 0);
        } else {
          assert.equal((await importInputs(target, opts([input], t, workers, 4096, 'csv'), hooks)).rows, 3001);
          assert.equal(await rows(t), 3001);
          await client.query(`TRUNCATE ${t}`);
        }
      }
      // Inside a quoted value, a line \. is data on every server.
      const quoted = file('quoted.csv', ['v', ...values.slice(0, 2000), '"x\n\\.\ny"', ...values.slice(2000)].join('\n') + '\n');
      assert.equal((await importInputs(target, opts([quoted], t, 2, 4096, 'csv'), hooks)).rows, 3001);
      assert.equal(await rows(t), 3001);
      assert.equal((await client.query(`SELECT count(*) AS n FROM ${t} WHERE v = E'x\\n\\\\.\\ny'`)).rows[0].n, '1');
    });
  });
}

/**
 * Exactness: for random CSVs, dataio (1, 4 and 32 workers; batches from 1KB) loads exactly the rows
 * that PostgreSQL's own server-side COPY loads from the same file; where that COPY rejects the file,
 * dataio fails and leaves the table untouched.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { importInputs } from '../../src/import/import.js';
import { READ_CHUNK } from '../../src/io/input.js';
import type { ConnectionTarget } from '../../src/pg/connect.js';
import { csvDialect, makeScanner } from '../../src/import/cut/scanner.js';
import { generateCsv, rng } from '../support/csvgen.js';
import { scratch } from '../support/files.js';
import { clientForSuite, testServers, uniqueName } from '../support/env.js';
import { importOptions, quietHooks } from '../support/import-options.js';

const { file: writeInput } = scratch('diff');

const hooks = quietHooks;
const opts = (input: string, table: string, workers: number, batchSize: number) => importOptions([input], table, workers, batchSize);

/** Damage a CSV so that PostgreSQL rejects it: an extra field, or a quote that never closes. */
function damage(text: string, seed: number): string {
  const r = rng(seed);
  if (r() < 0.5) {
    // A record with one field too many, inserted at a record boundary somewhere in the middle.
    const buf = Buffer.from(text);
    const scanner = makeScanner(csvDialect(), 'lf');
    const ends: number[] = [];
    for (let pos = 0; ; ) {
      const end = scanner.findEnd(buf, pos);
      if (end === -1) break;
      ends.push(end);
      pos = end;
    }
    const at = ends[1 + Math.floor(r() * (ends.length - 2))] as number;
    return Buffer.concat([buf.subarray(0, at), Buffer.from('x,y,z,extra\n'), buf.subarray(at)]).toString();
  }
  return `${text}\n"unterminated,x,y`;
}

for (const server of testServers()) {
  describe(`import matches server-side COPY on ${server.name}`, () => {
    const target: ConnectionTarget = { clientConfig: { connectionString: server.url }, display: server.name };
    let client!: pg.Client;
    clientForSuite(server.url, (c) => (client = c));

    async function fresh(cols: number): Promise<string> {
      const t = uniqueName('d');
      await client.query(`CREATE TABLE ${t} (${Array.from({ length: cols }, (_, i) => `c${i} text`).join(', ')})`);
      return t;
    }

    async function sameRows(a: string, b: string): Promise<void> {
      const r = await client.query<{ n: string }>(
        `SELECT (SELECT count(*) FROM (TABLE ${a} EXCEPT ALL TABLE ${b}) x) + (SELECT count(*) FROM (TABLE ${b} EXCEPT ALL TABLE ${a}) y) AS n`,
      );
      assert.equal(r.rows[0]?.n, '0', `${a} and ${b} differ`);
      const c = await client.query<{ a: string; b: string }>(`SELECT (SELECT count(*) FROM ${a}) AS a, (SELECT count(*) FROM ${b}) AS b`);
      assert.equal(c.rows[0]?.a, c.rows[0]?.b);
    }

    it('loads the same rows for random valid CSV (quotes, CRLF/CR/LF in fields, BOM, multibyte, long fields)', async () => {
      for (let seed = 1; seed <= 12; seed++) {
        const eol = (['\n', '\r\n', '\r'] as const)[seed % 3] as '\n' | '\r\n' | '\r';
        const { text } = generateCsv(seed * 7919, {
          rows: 150 + seed * 20,
          cols: 3,
          eol,
          finalNewline: seed % 4 !== 0,
          bom: seed % 5 === 0,
          newlinesInQuotes: true,
          ...(seed % 6 === 0 ? { longField: 4000 } : {}),
        });
        const input = writeInput(`v${seed}.csv`, text);
        const ref = await fresh(3);
        await client.query(`COPY ${ref} FROM '${input}' (FORMAT csv, HEADER true)`);
        for (const [workers, batch] of [[1, 1024], [4, 1024], [32, 1024], [4, 64 * 1024]] as const) {
          const t = await fresh(3);
          const res = await importInputs(target, opts(input, t, workers, batch), hooks);
          await sameRows(ref, t);
          const n = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ref}`);
          assert.equal(String(res.rows), n.rows[0]?.n, 'the reported row count is the loaded count');
        }
      }
    });

    it('loads the same rows from an input of many read buffers, reused as batches finish out of order', async () => {
      // Read buffers are reused once the batches cut from them are loaded (src/io/slab-pool.ts).
      const { text } = generateCsv(20240601, { rows: 250_000, cols: 3, eol: '\r\n', finalNewline: true, bom: false, newlinesInQuotes: true });
      const input = writeInput('many-buffers.csv', text);
      assert.ok(Buffer.byteLength(text) > 3 * READ_CHUNK, 'the input spans several read buffers');
      const ref = await fresh(3);
      await client.query(`COPY ${ref} FROM '${input}' (FORMAT csv, HEADER true)`);
      for (const [workers, batch] of [[4, 16 * 1024], [2, 300 * 1024], [3, 4096]] as const) {
        const t = await fresh(3);
        const res = await importInputs(target, opts(input, t, workers, batch), hooks);
        await sameRows(ref, t);
        const n = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ref}`);
        assert.equal(String(res.rows), n.rows[0]?.n, `workers ${workers}, batch ${batch}: the reported row count is the loaded count`);
      }
    });

    it('fails, leaving the table untouched, where server-side COPY rejects the file', async () => {
      for (let seed = 1; seed <= 8; seed++) {
        const { text } = generateCsv(seed * 104729, { rows: 200, cols: 3, eol: '\n', finalNewline: false, bom: false, newlinesInQuotes: true });
        const input = writeInput(`bad${seed}.csv`, damage(text, seed));
        const ref = await fresh(3);
        await assert.rejects(client.query(`COPY ${ref} FROM '${input}' (FORMAT csv, HEADER true)`));
        for (const workers of [1, 4]) {
          const t = await fresh(3);
          await client.query(`INSERT INTO ${t} VALUES ('keep', 'me', 'please')`);
          await assert.rejects(importInputs(target, opts(input, t, workers, 1024), hooks), (err: Error) => {
            assert.match(err.message, /import into \S+ failed/);
            return true;
          });
          const rows = await client.query(`SELECT * FROM ${t}`);
          assert.deepEqual(rows.rows, [{ c0: 'keep', c1: 'me', c2: 'please' }]);
        }
      }
    });
  });
}

/**
 * Read buffers are reused once the batches cut from them are loaded (src/io/slab-pool.ts). With an
 * input of several read buffers, small batches and several workers finishing out of order, buffers
 * are reused many times over: the table must still hold exactly what server-side COPY loads.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { importDelimited } from '../../src/import/import-delimited.js';
import { READ_CHUNK } from '../../src/io/input.js';
import type { ConnectionTarget } from '../../src/pg/connect.js';
import { generateCsv } from '../support/csvgen.js';
import { scratch } from '../support/files.js';
import { testServers, uniqueName } from '../support/env.js';

const { file: writeInput } = scratch('slab-reuse');
const hooks = { progress: () => ({ update: () => undefined, stop: () => undefined }), warn: () => undefined };

for (const server of testServers()) {
  describe(`import with reused read buffers on ${server.name}`, () => {
    const target: ConnectionTarget = { clientConfig: { connectionString: server.url }, display: server.name };
    let client: pg.Client;
    before(async () => {
      client = new pg.Client({ connectionString: server.url });
      await client.connect();
    });
    after(async () => {
      await client.end();
    });

    it('loads exactly the rows server-side COPY loads from an input of many read buffers', async () => {
      const { text } = generateCsv(20240601, { rows: 250_000, cols: 3, eol: '\r\n', finalNewline: true, bom: false, newlinesInQuotes: true });
      const input = writeInput('many-buffers.csv', text);
      assert.ok(Buffer.byteLength(text) > 3 * READ_CHUNK, 'the input spans several read buffers');
      const make = async () => {
        const t = uniqueName('s');
        await client.query(`CREATE TABLE ${t} (c0 text, c1 text, c2 text)`);
        return t;
      };
      const ref = await make();
      await client.query(`COPY ${ref} FROM '${input}' (FORMAT csv, HEADER true)`);
      for (const [workers, batchSize] of [[4, 16 * 1024], [2, 300 * 1024], [3, 4096]] as const) {
        const t = await make();
        const res = await importDelimited(
          target,
          { input, table: t, format: 'csv', header: true, create: false, truncate: false, workers, batchSize, sampleRows: 100, onError: 'abort' },
          hooks,
        );
        const diff = await client.query<{ n: string }>(
          `SELECT (SELECT count(*) FROM (TABLE ${ref} EXCEPT ALL TABLE ${t}) x) + (SELECT count(*) FROM (TABLE ${t} EXCEPT ALL TABLE ${ref}) y) AS n`,
        );
        assert.equal(diff.rows[0]?.n, '0', `workers ${workers}, batch ${batchSize}: ${t} differs from server-side COPY`);
        const n = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ref}`);
        assert.equal(String(res.rows), n.rows[0]?.n);
      }
    });
  });
}

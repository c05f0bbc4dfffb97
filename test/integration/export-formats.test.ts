import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { exportData, type ExportOptions, type ExportResult } from '../../src/export/export.js';
import type { ConnectionTarget } from '../../src/pg/connect.js';
import type { Progress, ProgressState } from '../../src/progress/progress.js';
import { query, testServers, uniqueName, withClient, type TestServer } from '../support/env.js';
import { createTypedTable, fingerprint, TYPED_COLUMNS } from './export-fixtures.js';

class Collect extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(chunk);
    cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

interface Run {
  result: ExportResult;
  text: string;
  states: ProgressState[];
  warnings: string[];
}

async function run(server: TestServer, o: Partial<ExportOptions>): Promise<Run> {
  const out = new Collect();
  const states: ProgressState[] = [];
  const warnings: string[] = [];
  const target: ConnectionTarget = { clientConfig: { connectionString: server.url }, display: server.name };
  const progress: Progress = { update: (s) => void states.push({ ...s }), stop: () => undefined };
  const result = await exportData(
    target,
    { format: 'csv', header: true, gzip: false, output: '-', workers: 1, ...o },
    { stdout: out, progress: () => progress, warn: (m) => void warnings.push(m) },
  );
  return { result, text: out.text(), states, warnings };
}

/** The same COPY through pg-copy-streams: an independent reader of the protocol. */
async function reference(server: TestServer, sql: string): Promise<string> {
  return withClient(server, async (c: pg.Client) => {
    const chunks: Buffer[] = [];
    for await (const chunk of c.query(copyTo(sql))) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  });
}

for (const server of testServers()) {
  describe(`export formats on ${server.name}`, () => {
    it('CSV and TSV equal the same COPY read by pg-copy-streams; rows counted exactly', async () => {
      const t = uniqueName('fmt');
      await createTypedTable(server, t);
      const csv = await run(server, { table: t });
      assert.equal(csv.text, await reference(server, `COPY ${t} TO STDOUT (FORMAT csv, HEADER)`));
      assert.equal(csv.result.rows, 6);
      const tsv = await run(server, { table: t, format: 'tsv', header: false });
      assert.equal(tsv.text, await reference(server, `COPY ${t} TO STDOUT (FORMAT text)`));
    });

    it('NDJSON keeps every type: exact bigint and numeric, nested jsonb, ISO 8601, NaN as a string', async () => {
      const t = uniqueName('nd');
      await createTypedTable(server, t);
      const r = await run(server, { query: `select * from ${t} order by id`, format: 'ndjson' });
      assert.equal(r.result.rows, 6);
      const lines = r.text.split('\n');
      assert.equal(lines.pop(), '', 'ends with a newline');
      assert.equal(lines.length, 6, 'one line per row, even with raw newlines in a json value');
      const rows = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      // Numbers stay numbers, written exactly as PostgreSQL has them (JSON.parse would round them).
      assert.match(lines[0] as string, /"big":9223372036854775807,/);
      assert.match(lines[0] as string, /"num":123456789012345678901234567890,/);
      assert.match(lines[1] as string, /"big":-9223372036854775808,"num":-0\.000000000000000000000000000001,/);
      assert.match(lines[3] as string, /"num":1234567890\.12345678901234567890,/);
      // JSON has no NaN or Infinity: row_to_json writes them as strings.
      assert.equal(rows[0]?.['dbl'], 'NaN');
      assert.equal(rows[1]?.['dbl'], 'Infinity');
      assert.equal(rows[3]?.['dbl'], '-Infinity');
      assert.equal(rows[4]?.['num'], 'NaN');
      assert.equal(rows[4]?.['dbl'], 1.7976931348623157e308);
      assert.equal(rows[0]?.['flag'], true);
      assert.equal(rows[0]?.['txt'], 'line1\nline2\r\n\ttab \\ backslash "quoted" \'single\' , comma 😀 𝄞 é');
      assert.equal(rows[1]?.['txt'], '');
      assert.equal(rows[2]?.['txt'], null);
      assert.equal(rows[3]?.['txt'], '\\.');
      assert.equal(rows[4]?.['txt'], 'NULL');
      assert.deepEqual(rows[0]?.['doc'], { a: [1, 2.5, { b: null }], big: 12345678901234567890123, s: 'x"y\\z\n' });
      assert.deepEqual(rows[5]?.['doc'], { nested: { deep: [[], {}] } });
      assert.deepEqual(rows[0]?.['js'], { k: [1, 2], t: '\n' });
      assert.deepEqual(rows[0]?.['tags'], ['a', 'b c', null, 'd"e', 'f,g', '', 'NULL']);
      assert.equal(rows[0]?.['raw'], '\\x00ff105c0a');
      assert.equal(rows[0]?.['day'], '2024-02-29');
      assert.match(rows[0]?.['at'] as string, /^2024-02-02T01:01:01\.123456[+-]\d\d:\d\d$/);
      assert.equal(rows[0]?.['uid'], 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    });

    it('JSON array: valid JSON, back into an empty copy through json_populate_recordset, same rows', async () => {
      const t = uniqueName('js');
      await createTypedTable(server, t);
      const r = await run(server, { table: t, format: 'json' });
      const parsed = JSON.parse(r.text) as unknown[];
      assert.equal(parsed.length, 6);
      const copy = `${t}_copy`;
      await query(server, `CREATE TABLE ${copy} (${TYPED_COLUMNS})`);
      await query(server, `INSERT INTO ${copy} SELECT * FROM json_populate_recordset(null::${copy}, $1::json)`, [r.text]);
      // As JSON carries them: json whitespace is not kept, and a json null is an SQL NULL (see fingerprint).
      assert.equal(await fingerprint(server, copy, true), await fingerprint(server, t, true));
      const nd = await run(server, { table: t, format: 'ndjson' });
      assert.deepEqual(
        nd.text.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown),
        parsed,
        'NDJSON and the JSON array hold the same objects',
      );
    });

    it('a json value with raw CR/LF (kept by the server) stays on one NDJSON line', async () => {
      const r = await run(server, { query: `select E'{\\n"a":\\r\\n1}'::json as j, E'x\\ny' as t`, format: 'ndjson' });
      assert.equal(r.text, '{"j":{ "a":  1},"t":"x\\ny"}\n');
    });

    it('progress: rows and bytes as they go, with the planner estimate as total', async () => {
      const t = uniqueName('prog');
      await query(server, `CREATE TABLE ${t} AS SELECT i AS id, md5(i::text) AS h FROM generate_series(1, 50000) i`);
      await query(server, `ANALYZE ${t}`);
      const r = await run(server, { table: t });
      const last = r.states.at(-1);
      assert.equal(last?.rows, 50000);
      assert.equal(last?.bytes, Buffer.byteLength(r.text));
      assert.equal(last?.rowsTotal, 50000);
      assert.ok(r.states.length > 2, 'updated while running');
      for (let i = 1; i < r.states.length; i++) assert.ok((r.states[i]?.rows ?? 0) >= (r.states[i - 1]?.rows ?? 0));
      assert.equal(r.result.bytes, Buffer.byteLength(r.text));
    });

    it('a view and a schema-qualified, quoted name', async () => {
      const schema = uniqueName('S');
      await query(server, `CREATE SCHEMA "${schema}"`);
      await query(server, `CREATE TABLE "${schema}"."My Table" AS SELECT 1 AS a, 'x' AS "select"`);
      await query(server, `CREATE VIEW "${schema}".v AS SELECT * FROM "${schema}"."My Table"`);
      assert.equal((await run(server, { table: `"${schema}"."My Table"` })).text, 'a,select\n1,x\n');
      assert.equal((await run(server, { table: `"${schema}".v`, format: 'ndjson' })).text, '{"a":1,"select":"x"}\n');
      // A view cannot be cut into ctid ranges: one connection, and a warning that says so.
      const w = await run(server, { table: `"${schema}".v`, workers: 3 });
      assert.equal(w.text, 'a,select\n1,x\n');
      assert.equal(w.result.workers, 1);
      assert.match(w.warnings.join('\n'), /one connection: .* is not a heap table/);
    });

    it('errors are DataioErrors with the server message', async () => {
      await assert.rejects(run(server, { table: uniqueName('nope') }), { code: 'TABLE_NOT_FOUND', message: /^table \S+ does not exist$/ });
      await assert.rejects(run(server, { query: 'select * from no_such_table_here' }), {
        code: 'TABLE_NOT_FOUND',
        message: /^export of the query failed: relation "no_such_table_here" does not exist$/,
        hint: /table names in the query/,
      });
      await assert.rejects(run(server, { query: 'select 1/0', format: 'json' }), { code: 'DATA_ERROR', message: /division by zero/ });
    });

    it("a failed export leaves the caller's stdout alone: not destroyed, no error emitted on it", async () => {
      const q = 'select case when g > 50000 then 1/0 else g end from generate_series(1, 100000) g';
      for (const [o, code] of [
        [{ query: 'drop table big' }, 'DB_ERROR'],
        [{ query: q, format: 'ndjson' }, 'DATA_ERROR'],
      ] as const) {
        const out = new Collect();
        const errors: unknown[] = [];
        out.on('error', (err) => errors.push(err));
        const target: ConnectionTarget = { clientConfig: { connectionString: server.url }, display: server.name };
        const progress: Progress = { update: () => undefined, stop: () => undefined };
        await assert.rejects(
          exportData(target, { format: 'csv', header: true, gzip: false, output: '-', workers: 1, ...o }, { stdout: out, progress: () => progress, warn: () => undefined }),
          { code },
        );
        await new Promise((r) => setImmediate(r));
        assert.equal(out.destroyed, false, 'stdout is not destroyed');
        assert.deepEqual(errors, [], 'no error event on stdout (the CLI would take it for a write failure)');
        assert.equal(out.write('still writable\n'), true);
      }
    });
  });
}

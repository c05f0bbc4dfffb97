import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { scratch } from '../support/files.js';
import { query, runCli, testServers, uniqueName, type TestServer } from '../support/env.js';

const { file } = scratch('json');

/** The same rows as CSV, NDJSON and a JSON array (quotes, commas, unicode, newlines, nulls, big numbers). */
function sameRows(n: number): { csv: string; ndjson: string; json: string } {
  const csvRows = ['id,name,amount,note,at'];
  const recs: string[] = [];
  for (let i = 1; i <= n; i++) {
    const name = i % 7 === 0 ? `has, "quote" ${i}` : i % 11 === 0 ? `line\nbreak ${i} 😀` : `name ${i}`;
    const amount = `${i}${'0'.repeat(i % 20)}.${String(i % 97).padStart(2, '0')}`;
    const note = i % 5 === 0 ? null : `n\t${i}`;
    const at = `2024-01-${String(1 + (i % 28)).padStart(2, '0')}T10:00:00Z`;
    const q = (v: string) => `"${v.replace(/"/g, '""')}"`;
    const id = (9007199254740000n + BigInt(i)).toString(); // beyond 2^53: exact only as BigInt
    csvRows.push([id, q(name), amount, note === null ? '' : q(note), at].join(','));
    recs.push(`{"id":${id},"name":${JSON.stringify(name)},"amount":${amount},"note":${note === null ? 'null' : JSON.stringify(note)},"at":"${at}"}`);
  }
  return { csv: csvRows.join('\n') + '\n', ndjson: recs.join('\n') + '\n', json: `[\n${recs.join(',\n')}\n]\n` };
}

const DDL = 'id bigint, name text, amount numeric, note text, at timestamptz';

async function create(server: TestServer, ddl = DDL): Promise<string> {
  const t = uniqueName('j');
  await query(server, `CREATE TABLE ${t} (${ddl})`);
  return t;
}

async function checksum(server: TestServer, t: string): Promise<string> {
  const r = await query<{ md5: string; n: number }>(server, `SELECT md5(string_agg(x::text, '|' ORDER BY id)) AS md5, count(*)::int AS n FROM ${t} x`);
  return `${r[0]?.n}:${r[0]?.md5}`;
}

for (const server of testServers()) {
  const db = ['--db', server.url, '--progress', 'none'];
  describe(`JSON import on ${server.name}`, () => {
    for (const [rows, options] of [
      [3000, ['--batch-size', '16KB', '--workers', '4']],
      [1_000_000, []],
    ] as const) {
      it(`loads the same ${rows} rows from CSV, NDJSON and a JSON array into identical tables (${options.length > 0 ? options.join(' ') : 'defaults'})`, async () => {
        const data = sameRows(rows);
        const sums: string[] = [];
        for (const [ext, content] of [['csv', data.csv], ['ndjson', data.ndjson], ['json', data.json]] as const) {
          const t = await create(server);
          const r = await runCli(['import', file(`same-${rows}.${ext}`, content), '--table', t, ...options, ...db]);
          assert.equal(r.code, 0, r.stderr);
          sums.push(await checksum(server, t));
        }
        assert.match(sums[0] as string, new RegExp(`^${rows}:`));
        assert.equal(sums[1], sums[0], 'NDJSON = CSV');
        assert.equal(sums[2], sums[0], 'JSON = CSV');
      });
    }

    it('reads gzip NDJSON from stdin with --format', async () => {
      const t = await create(server);
      const r = await runCli(['import', '-', '--format', 'ndjson', '--table', t, ...db], { stdin: gzipSync(sameRows(50).ndjson) });
      assert.equal(r.code, 0, r.stderr);
      assert.match(await checksum(server, t), /^50:/);
    });

    it('--create infers types; big integers and 30-digit decimals arrive exactly; nested values become jsonb', async () => {
      const t = uniqueName('jc');
      const nd = '{"id": 9007199254740993, "big": 123456789012345678901234567890.123, "doc": {"a": [1, "\\u00e9\\ud83d\\ude00"]}, "ok": true}\n{"id": 2, "big": 1, "doc": null, "ok": false, "later": "x"}\n';
      const r = await runCli(['import', file('c.ndjson', nd), '--table', t, '--create', ...db]);
      assert.equal(r.code, 0, r.stderr);
      const rows = await query(server, `SELECT id::text, big::text, doc, ok, later FROM ${t} ORDER BY id DESC`);
      assert.deepEqual(rows, [
        { id: '9007199254740993', big: '123456789012345678901234567890.123', doc: { a: [1, 'é😀'] }, ok: true, later: null },
        { id: '2', big: '1', doc: null, ok: false, later: 'x' },
      ]);
      const types = await query<{ t: string }>(server, `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 ORDER BY attnum`, [t]);
      assert.deepEqual(types.map((x) => x.t), ['bigint', 'numeric', 'jsonb', 'boolean', 'text']);
    });

    it('stops on malformed JSON naming the line (NDJSON) or byte offset (array), leaving the table as it was', async () => {
      const t = await create(server);
      await query(server, `INSERT INTO ${t} (id) VALUES (1)`);
      const lines = sameRows(500).ndjson.split('\n');
      lines[449] = '{"id": 5, "name": "x",}';
      const nd = await runCli(['import', file('bad.ndjson', lines.join('\n')), '--table', t, '--batch-size', '4KB', ...db]);
      assert.equal(nd.code, 1);
      assert.match(nd.stderr, /^error: malformed JSON at input line 450: /m);
      const arr = await runCli(['import', file('bad.json', '[{"id": 2}, {"id": 3,]'), '--table', t, ...db]);
      assert.equal(arr.code, 1);
      assert.match(arr.stderr, /^error: malformed JSON at byte offset 21 \(input line 1\): element 2: unexpected "\]"/m);
      const trunc = await runCli(['import', file('trunc.json', sameRows(100).json.slice(0, -40)), '--table', t, ...db]);
      assert.equal(trunc.code, 1);
      assert.match(trunc.stderr, /truncated/);
      assert.deepEqual(await query(server, `SELECT id::int FROM ${t}`), [{ id: 1 }]);
    });

    it('names the record the server rejected', async () => {
      const t = await create(server);
      const nd = '{"id": 1}\n\n{"id": 2, "amount": "lots"}\n';
      const r = await runCli(['import', file('srv.ndjson', nd), '--table', t, ...db]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /failed, at input line 3, column amount: invalid input syntax for type numeric: "lots"/);
    });

    it('an unknown key is an error naming it, unless --ignore-unknown', async () => {
      const t = await create(server);
      const nd = '{"id": 1, "name": "a"}\n{"id": 2, "colour": "red"}\n';
      const r = await runCli(['import', file('u.ndjson', nd), '--table', t, ...db]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /the record at input line 2 has the key "colour", which is not a column/);
      const ok = await runCli(['import', file('u.ndjson', nd), '--table', t, '--ignore-unknown', ...db]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(await checksum(server, t), /^2:/);
    });

    it('--jsonb-column loads whole records; --json-path finds a nested array; a missing key keeps the column default', async () => {
      const t = await create(server, 'doc jsonb');
      const r = await runCli(['import', file('w.json', '[{"a": 1, "b": {"c": [true]}}, {"z": "\\t"}]'), '--table', t, '--jsonb-column', 'doc', ...db]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await query(server, `SELECT doc FROM ${t} ORDER BY doc->>'a'`), [{ doc: { a: 1, b: { c: [true] } } }, { doc: { z: '\t' } }]);
      const p = await create(server, 'serial_id bigserial, id numeric, name text');
      const nested = '{"meta": {"n": 2}, "data": {"items": [{"id": 12345678901234567890123, "name": "x"}, {"id": 2}]}}';
      const r2 = await runCli(['import', file('p.json', nested), '--table', p, '--json-path', 'data.items', ...db]);
      assert.equal(r2.code, 0, r2.stderr);
      assert.deepEqual(await query(server, `SELECT serial_id::int, id::text, name FROM ${p} ORDER BY serial_id`), [
        { serial_id: 1, id: '12345678901234567890123', name: 'x' },
        { serial_id: 2, id: '2', name: null },
      ]);
    });

    it('malformed JSON under --json-path is one line and exit 1', async () => {
      const t = await create(server, 'id int');
      const r = await runCli(['import', file('pbad.json', '{"data": {"items": [{"id": 1}, {"id": 2,]}}'), '--table', t, '--json-path', 'data.items', ...db]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: malformed JSON: /m);
      assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 0 }]);
    });

    it('an empty array loads nothing and succeeds', async () => {
      const t = await create(server);
      const r = await runCli(['import', file('e.json', ' [ \n ] '), '--table', t, ...db]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /imported 0 rows/);
    });
  });
}

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { scratch } from '../support/files.js';
import { query, runCli, testServers, uniqueName, type TestServer } from '../support/env.js';

const { file, dir } = scratch('import-errors');

async function create(server: TestServer, ddl: string): Promise<string> {
  const t = uniqueName('e');
  await query(server, `CREATE TABLE ${t} (${ddl})`);
  return t;
}

async function count(server: TestServer, t: string): Promise<number> {
  return Number((await query<{ n: string }>(server, `SELECT count(*) AS n FROM ${t}`))[0]?.n);
}

const FIVE_KINDS = 'id bigint, qty integer, at timestamptz, price numeric, note text';

/** 200,000 rows with 50 bad ones, ten of each kind, spread over the file; returns the CSV and the bad lines. */
function fiftyBad(): { csv: string; bad: string[]; badLines: number[]; badIds: number[] } {
  const kinds = [
    (i: number) => `${i},12x,2024-01-01 10:00:00+00,1.5,bad integer`,
    (i: number) => `${i},1,2024-02-30 10:00:00+00,1.5,impossible timestamp`,
    (i: number) => `${i},1,2024-01-01 10:00:00+00,1.5,extra column,surplus`,
    (i: number) => `${i},1`,
    (i: number) => `${i},1,2024-01-01 10:00:00+00,1.2.3,bad number`,
  ];
  const lines = ['id,qty,at,price,note'];
  const bad: string[] = [];
  const badLines: number[] = [];
  const badIds: number[] = [];
  for (let i = 1; i <= 200_000; i++) {
    let line = `${i},${i % 1000},2024-01-01 10:00:00+00,${i}.25,"row ${i}, fine"`;
    // Every 3,989th row from the 17th on: 50 of them, from near the start to the end.
    if (i % 3989 === 17 && bad.length < 50) {
      line = (kinds[bad.length % 5] as (i: number) => string)(i);
      bad.push(line);
      badLines.push(i + 1);
      badIds.push(i);
    }
    lines.push(line);
  }
  return { csv: lines.join('\n') + '\n', bad, badLines, badIds };
}

for (const server of testServers()) {
  const db = ['--db', server.url, '--progress', 'none'];
  describe(`import --on-error on ${server.name}`, () => {
    it('skip: 50 bad rows of five kinds in 200k are rejected, byte for byte, and the other 199,950 load (exit 3)', async () => {
      const t = await create(server, FIVE_KINDS);
      const { csv, bad, badLines, badIds } = fiftyBad();
      assert.equal(bad.length, 50);
      const input = file(`${t}.csv`, csv);
      const r = await runCli(['import', input, '--table', t, '--on-error', 'skip', '--workers', '4', '--batch-size', '256KB', ...db]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /imported 199,950 rows/);
      assert.match(r.stderr, new RegExp(`rejected 50 rows: they are in ${join(dir, `${t}.rejects.csv`).replace(/[.]/g, '\\.')}`));
      assert.equal(await count(server, t), 199_950);
      const loadedBad = await query(server, `SELECT id FROM ${t} WHERE id = ANY($1::bigint[])`, [badIds]);
      assert.deepEqual(loadedBad, []);
      // The rejects file: the header, then exactly the 50 input lines in input order.
      const rejects = readFileSync(join(dir, `${t}.rejects.csv`), 'utf8');
      assert.equal(rejects, ['id,qty,at,price,note', ...bad].join('\n') + '\n');
      // The log: one NDJSON line per reject, with input line, byte offset, SQLSTATE and message.
      const log = readFileSync(join(dir, `${t}.rejects.csv.log`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(log.length, 50);
      assert.deepEqual(
        log.map((l) => l['line']),
        badLines,
      );
      assert.deepEqual(
        log.slice(0, 5).map((l) => l['sqlstate']),
        ['22P02', '22008', '22P04', '22P04', '22P02'],
      );
      assert.equal(log[0]?.['column'], 'qty');
      const firstOffset = csv.indexOf(`\n${bad[0]}\n`) + 1;
      assert.equal(log[0]?.['offset'], firstOffset);
      // The rejects file is valid input: fixed, it loads.
      const fixed = file(`${t}-fixed.csv`, rejects.replace(/12x/g, '12').replace(/02-30/g, '02-28').replace(/,surplus/g, '').replace(/1\.2\.3/g, '1.2').replace(/^(\d+),1$/gm, '$1,1,2024-01-01,1,fixed'));
      const again = await runCli(['import', fixed, '--table', t, ...db]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(await count(server, t), 200_000);
    });

    it('default: one bad row at 90% of the file fails the import, names its line, and leaves no row', async () => {
      const t = await create(server, FIVE_KINDS);
      const lines = ['id,qty,at,price,note'];
      for (let i = 1; i <= 200_000; i++) lines.push(i === 180_000 ? `${i},1,2024-01-01,not-a-number,x` : `${i},1,2024-01-01,${i},x`);
      const r = await runCli(['import', file(`${t}.csv`, lines.join('\n') + '\n'), '--table', t, ...db]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: import into \S+ failed, at input line 180001, column price: invalid input syntax for type numeric: "not-a-number"$/m);
      assert.equal(await count(server, t), 0);
      assert.equal(existsSync(join(dir, `${t}.rejects.csv`)), false);
    });

    it('skip with --max-errors: past the limit the import fails as abort would, and loads nothing', async () => {
      const t = await create(server, FIVE_KINDS);
      const { csv } = fiftyBad();
      const rejects = join(dir, `${t}-rej.csv`);
      const r = await runCli(['import', file(`${t}.csv`, csv), '--table', t, '--max-errors', '10', '--rejects', rejects, '--workers', '2', '--batch-size', '256KB', ...db]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error: import into \S+ failed: more than 10 rows rejected \(--max-errors\); the last at input line \d+/m);
      assert.equal(await count(server, t), 0);
      // With enough room, the same command succeeds.
      const ok = await runCli(['import', file(`${t}.csv`, csv), '--table', t, '--max-errors', '50', '--rejects', rejects, ...db]);
      assert.equal(ok.code, 3, ok.stderr);
      assert.equal(await count(server, t), 199_950);
      assert.equal(readFileSync(rejects, 'utf8').trim().split('\n').length, 51);
    });

    it('skip: a unique violation in the middle of the file rejects just that row', async () => {
      const t = await create(server, 'id int PRIMARY KEY, name text');
      await query(server, `INSERT INTO ${t} VALUES (5000, 'already there')`);
      const lines = ['id,name'];
      for (let i = 1; i <= 10_000; i++) if (i !== 5000) lines.push(`${i},n${i}`);
      lines.splice(6000, 0, '5000,duplicate of a row in the table');
      const input = file(`${t}.csv`, lines.join('\n') + '\n');
      const r = await runCli(['import', input, '--table', t, '--on-error', 'skip', '--workers', '4', '--batch-size', '8KB', ...db]);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(await count(server, t), 10_000);
      assert.equal(readFileSync(join(dir, `${t}.rejects.csv`), 'utf8'), 'id,name\n5000,duplicate of a row in the table\n');
      const log = JSON.parse(readFileSync(join(dir, `${t}.rejects.csv.log`), 'utf8')) as Record<string, unknown>;
      assert.equal(log['sqlstate'], '23505');
      assert.equal(log['line'], 6001);
    });

    it('skip: a key duplicated inside the file, loaded by two workers, rejects one of the two rows', async () => {
      const t = await create(server, 'id int PRIMARY KEY, name text');
      const lines = ['id,name'];
      for (let i = 1; i <= 20_000; i++) lines.push(`${i},n${i}`);
      lines.push('7,again');
      const r = await runCli(['import', file(`${t}.csv`, lines.join('\n') + '\n'), '--table', t, '--on-error', 'skip', '--workers', '4', '--batch-size', '16KB', ...db]);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(await count(server, t), 20_000);
      const rejected = readFileSync(join(dir, `${t}.rejects.csv`), 'utf8').split('\n');
      assert.equal(rejected.length, 3); // header, one record, the final newline
      assert.match(rejected[1] ?? '', /^7,(n7|again)$/);
    });

    it('skip: a foreign-key violation (checked at the end of the COPY, no line named) rejects just that row', async () => {
      const parent = await create(server, 'id int PRIMARY KEY');
      await query(server, `INSERT INTO ${parent} SELECT generate_series(1, 100)`);
      const t = await create(server, `id int, parent int REFERENCES ${parent}`);
      const lines = ['id,parent'];
      for (let i = 1; i <= 5000; i++) lines.push(i === 3333 ? `${i},999` : `${i},${1 + (i % 100)}`);
      const r = await runCli(['import', file(`${t}.csv`, lines.join('\n') + '\n'), '--table', t, '--on-error', 'skip', ...db]);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(await count(server, t), 4999);
      assert.equal(readFileSync(join(dir, `${t}.rejects.csv`), 'utf8'), 'id,parent\n3333,999\n');
      const log = JSON.parse(readFileSync(join(dir, `${t}.rejects.csv.log`), 'utf8')) as Record<string, unknown>;
      assert.equal(log['sqlstate'], '23503');
      assert.equal(log['line'], 3334);
    });

    it('skip: NOT NULL, CHECK, too long and bad encoding are rejected too; a clean file exits 0 and leaves no rejects file', async () => {
      const t = await create(server, 'id int NOT NULL, code varchar(3) CHECK (code <> \'bad\'), name text');
      const input = Buffer.concat([Buffer.from('id,code,name\n1,ok,a\n,ok,null id\n3,bad,check\n4,long,too long\n5,ok,'), Buffer.from([0xff, 0xfe]), Buffer.from('\n6,ok,f\n')]);
      const r = await runCli(['import', file(`${t}.csv`, input), '--table', t, '--on-error', 'skip', ...db, '--progress', 'json']);
      assert.equal(r.code, 3, r.stderr);
      assert.deepEqual(await query(server, `SELECT id FROM ${t} ORDER BY id`), [{ id: 1 }, { id: 6 }]);
      // Progress lines count the rejects too.
      const progress = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { rows: number; rejected?: number });
      assert.deepEqual(progress.at(-1) && [progress.at(-1)?.rows, progress.at(-1)?.rejected], [2, 4]);
      const log = readFileSync(join(dir, `${t}.rejects.csv.log`), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { sqlstate: string }).sqlstate);
      assert.deepEqual(log, ['23502', '23514', '22001', '22021']);
      assert.deepEqual(readFileSync(join(dir, `${t}.rejects.csv`)), Buffer.concat([Buffer.from('id,code,name\n,ok,null id\n3,bad,check\n4,long,too long\n5,ok,'), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]));

      const clean = await create(server, 'id int');
      const ok = await runCli(['import', file(`${clean}.csv`, 'id\n1\n2\n'), '--table', clean, '--on-error', 'skip', ...db]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(existsSync(join(dir, `${clean}.rejects.csv`)), false);
    });

    it('skip: NDJSON and JSON-array records the server or the converter refuses go to a rejects file of the same format', async () => {
      const t = await create(server, 'id int, n numeric');
      const ndjson = '{"id":1,"n":1}\n{"id":2,"n":"x"}\n{"id":3,"n":3,"zz":1}\n{"id":4,\n{"id":5,"n":5}\n';
      const r = await runCli(['import', file(`${t}.ndjson`, ndjson), '--table', t, '--on-error', 'skip', ...db]);
      assert.equal(r.code, 3, r.stderr);
      assert.deepEqual(await query(server, `SELECT id FROM ${t} ORDER BY id`), [{ id: 1 }, { id: 5 }]);
      assert.equal(readFileSync(join(dir, `${t}.rejects.ndjson`), 'utf8'), '{"id":2,"n":"x"}\n{"id":3,"n":3,"zz":1}\n{"id":4,\n');
      const log = readFileSync(join(dir, `${t}.rejects.ndjson.log`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; column: string | null });
      assert.deepEqual(
        log.map((l) => [l.line, l.column]),
        [
          [2, 'n'],
          [3, 'zz'],
          [4, null],
        ],
      );

      const u = await create(server, 'id int, n numeric');
      const json = '[\n  {"id": 1, "n": 1},\n  {"id": 2, "n": "bad"},\n  {"id": 3, "n": 3}\n]\n';
      const j = await runCli(['import', file(`${u}.json`, json), '--table', u, '--on-error', 'skip', ...db]);
      assert.equal(j.code, 3, j.stderr);
      const rejected = readFileSync(join(dir, `${u}.rejects.json`), 'utf8');
      assert.deepEqual(JSON.parse(rejected), [{ id: 2, n: 'bad' }]);
      assert.equal(rejected, '[\n{"id": 2, "n": "bad"}\n]\n');
    });

    it('refuses --max-errors or --rejects with --on-error abort (exit 2)', async () => {
      const r = await runCli(['import', file('x.csv', 'a\n1\n'), '--table', 'x', '--on-error', 'abort', '--max-errors', '3', ...db]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^error: --max-errors applies to --on-error skip$/m);
    });
  });
}

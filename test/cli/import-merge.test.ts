/**
 * Cron-job imports: upsert (--on-conflict nothing|update, --key; the input's last row of a key wins)
 * in every mode and format, and several inputs (files, directories) as one import.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { scratch } from '../support/files.js';
import { query, runCli, testServers, uniqueName, type TestServer } from '../support/env.js';
import { startCli, waitFor } from '../support/resume.js';

const { file, dir } = scratch('import-merge');

async function table(server: TestServer, ddl: string, rows = ''): Promise<string> {
  const t = uniqueName('m');
  await query(server, `CREATE TABLE ${t} (${ddl})`);
  if (rows !== '') await query(server, `INSERT INTO ${t} VALUES ${rows}`);
  return t;
}

/** A delta of `n` rows: keys 1..n, every key k > n/2 twice (the second occurrence later, with "late" values). */
function delta(n: number): { csv: string; ndjson: string; json: string } {
  const recs: { id: number; v: string; n: number }[] = [];
  for (let i = 1; i <= n; i++) recs.push({ id: i, v: `early ${i}`, n: i });
  for (let i = n; i > n / 2; i--) recs.push({ id: i, v: `late ${i}`, n: -i });
  const csv = ['id,v,n', ...recs.map((r) => `${r.id},${r.v},${r.n}`)].join('\n') + '\n';
  const lines = recs.map((r) => JSON.stringify(r));
  return { csv, ndjson: lines.join('\n') + '\n', json: `[\n${lines.join(',\n')}\n]\n` };
}

for (const server of testServers()) {
  const db = ['--db', server.url, '--progress', 'none'];

  describe(`upsert on ${server.name}`, () => {
    const N = 20_000;
    const d = delta(N);
    // Keys 1..N/4 are in the table already with "old" values.
    const existing = Array.from({ length: N / 4 }, (_, i) => `(${i + 1}, 'old', 0)`).join(', ');

    for (const [format, content] of [['csv', d.csv], ['ndjson', d.ndjson], ['json', d.json]] as const) {
      for (const mode of [[], ['--on-error', 'skip'], ['--import-id']] as const) {
        it(`update, ${format}${mode.length ? ` ${mode[0]}` : ''}: existing rows take the input's values, a key's last row wins, over several workers`, async () => {
          const t = await table(server, 'id int PRIMARY KEY, v text, n int', existing);
          const extra = mode[0] === '--import-id' ? ['--import-id', t] : [...mode];
          const r = await runCli(['import', file(`${t}.${format}`, content), '--table', t, '--on-conflict', 'update', '--workers', '3', '--batch-size', '16KB', '--json', ...extra, ...db]);
          assert.equal(r.code, 0, r.stderr);
          // What the move did, from the transaction's own counters: not after skip mode's savepoints.
          const summary = JSON.parse(r.stdout) as { rows: number; inserted?: number; updated?: number };
          assert.equal(summary.rows, N + N / 2);
          if (mode[0] === '--on-error') assert.equal(summary.inserted, undefined);
          else assert.deepEqual([summary.inserted, summary.updated], [N - N / 4, N / 4]);
          const rows = await query<{ n: number; early: number; late: number; old: number; neg: number }>(
            server,
            `SELECT count(*)::int AS n, count(*) FILTER (WHERE v LIKE 'early %')::int AS early, count(*) FILTER (WHERE v LIKE 'late %')::int AS late,
                    count(*) FILTER (WHERE v = 'old')::int AS old, count(*) FILTER (WHERE n < 0 AND v LIKE 'late %' AND -n = id)::int AS neg FROM ${t}`,
          );
          assert.deepEqual(rows, [{ n: N, early: N / 2, late: N / 2, old: 0, neg: N / 2 }]);
        });
      }
    }

    it('--import-id: a run whose move fails keeps its staging table (made without autovacuum) for the next, which finishes and drops it', async () => {
      const t = await table(server, 'id int PRIMARY KEY, v text, n int CONSTRAINT small CHECK (n <= 2500)', "(1, 'old', 0)");
      const input = file(`${t}.csv`, ['id,v,n', ...Array.from({ length: 3000 }, (_, i) => `${i + 1},v${i + 1},${i + 1}`)].join('\n') + '\n');
      const args = ['import', input, '--table', t, '--on-conflict', 'update', '--import-id', t, '--workers', '2', '--batch-size', '4KB', ...db];
      const failed = await runCli(args);
      assert.equal(failed.code, 1, failed.stderr);
      assert.match(failed.stderr, /small/);
      const staging = `SELECT c.reloptions AS o FROM dataio.imports i JOIN pg_class c ON c.oid = to_regclass('dataio.' || quote_ident(i.staging)) WHERE i.import_id = $1`;
      assert.deepEqual(await query(server, staging, [t]), [{ o: ['autovacuum_enabled=off'] }]);
      await query(server, `ALTER TABLE ${t} DROP CONSTRAINT small`);
      const ok = await runCli(args);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n, sum(n)::int AS s FROM ${t}`), [{ n: 3000, s: (3000 * 3001) / 2 }]);
      assert.deepEqual(await query(server, staging, [t]), []);
    });

    it('nothing keeps the rows the table has; new keys the input holds twice take the last', async () => {
      const t = await table(server, 'id int PRIMARY KEY, v text, n int', existing);
      const r = await runCli(['import', file(`${t}.csv`, d.csv), '--table', t, '--on-conflict', 'nothing', '--workers', '2', '--batch-size', '16KB', ...db]);
      assert.equal(r.code, 0, r.stderr);
      // The summary line says what the table got: the rest were keys it had or repeated keys.
      assert.match(r.stderr, /imported 30,000 rows .*; in the table: 15,000 new, 15,000 left as the table had them or superseded by a later row of their key\n/);
      const rows = await query(server, `SELECT count(*)::int AS n, count(*) FILTER (WHERE v = 'old')::int AS old, count(*) FILTER (WHERE v LIKE 'late %')::int AS late FROM ${t}`);
      assert.deepEqual(rows, [{ n: N, old: N / 4, late: N / 2 }]);
    });

    it('--key names a unique key other than the primary key; a small file takes one connection', async () => {
      const t = await table(server, 'id serial PRIMARY KEY, code text UNIQUE, qty int', "(100, 'a', 1), (101, 'b', 1)");
      const r = await runCli(['import', file(`${t}.csv`, 'code,qty\nb,5\nc,7\nb,6\n'), '--table', t, '--on-conflict', 'update', '--key', 'code', '--json', ...db]);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(r.stdout) as { commit: string; inserted: number; updated: number };
      assert.equal(summary.commit, 'one connection');
      assert.deepEqual([summary.inserted, summary.updated], [1, 1], 'c is new, b updated (its first row superseded)');
      assert.deepEqual(await query(server, `SELECT code, qty FROM ${t} ORDER BY code`), [
        { code: 'a', qty: 1 },
        { code: 'b', qty: 6 },
        { code: 'c', qty: 7 },
      ]);
    });

    it('a partitioned table: the summary counts the rows its partitions got', async () => {
      const t = uniqueName('mp');
      await query(server, `CREATE TABLE ${t} (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)`);
      await query(server, `CREATE TABLE ${t}_lo PARTITION OF ${t} FOR VALUES FROM (0) TO (1000)`);
      await query(server, `CREATE TABLE ${t}_hi PARTITION OF ${t} FOR VALUES FROM (1000) TO (100000)`);
      await query(server, `INSERT INTO ${t} SELECT i, 'old' FROM generate_series(1, 1500) i`);
      // Keys 1001..3000: 500 in the table (in the high partition), 1,500 new; 3000 twice.
      const csv = ['id,v', ...Array.from({ length: 2000 }, (_, i) => `${1001 + i},new`), '3000,newer'].join('\n') + '\n';
      const r = await runCli(['import', file(`${t}.csv`, csv), '--table', t, '--on-conflict', 'update', '--workers', '2', '--batch-size', '4KB', '--json', ...db]);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(r.stdout) as { rows: number; inserted: number; updated: number };
      assert.deepEqual([summary.rows, summary.inserted, summary.updated], [2001, 1500, 500]);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n, count(*) FILTER (WHERE v = 'old')::int AS old FROM ${t}`), [{ n: 3000, old: 1000 }]);
    });

    it('clear errors: no primary key and no --key; a --key that is not unique; a --key the input lacks; --key without --on-conflict', async () => {
      const t = await table(server, 'id int, v text');
      const input = file(`${t}.csv`, 'id,v\n1,a\n');
      const noKey = await runCli(['import', input, '--table', t, '--on-conflict', 'update', ...db]);
      assert.equal(noKey.code, 2);
      assert.match(noKey.stderr, new RegExp(`^error: --on-conflict update needs a key: table ${t} has no primary key$`, 'm'));
      assert.match(noKey.stderr, /^hint: name the columns that identify a row with --key a,b/m);
      const notUnique = await runCli(['import', input, '--table', t, '--on-conflict', 'update', '--key', 'id', ...db]);
      assert.equal(notUnique.code, 2);
      assert.match(notUnique.stderr, /^error: --key id is not a unique key of .*: there is no unique or exclusion constraint matching the ON CONFLICT specification$/m);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 0 }]);
      const t2 = await table(server, 'id int PRIMARY KEY, v text');
      const lacks = await runCli(['import', file(`${t2}.csv`, 'v\nx\n'), '--table', t2, '--on-conflict', 'nothing', ...db]);
      assert.equal(lacks.code, 2);
      assert.match(lacks.stderr, /^error: the input has no column "id", which --key names$/m);
      const made = await runCli(['import', input, '--table', uniqueName('n'), '--create', '--on-conflict', 'update', '--key', 'id', ...db]);
      assert.equal(made.code, 2);
      assert.match(made.stderr, /^error: --on-conflict merges into a table that exists, not one --create makes$/m);
      const bare = await runCli(['import', input, '--table', t, '--key', 'id', ...db]);
      assert.equal(bare.code, 2);
      assert.match(bare.stderr, /^error: --key applies to --on-conflict nothing or update$/m);
    });

    it('the default (error) fails on a key the table has, naming it, and loads nothing', async () => {
      const t = await table(server, 'id int PRIMARY KEY, v text, n int', existing);
      const r = await runCli(['import', file(`${t}.csv`, d.csv), '--table', t, '--workers', '2', '--batch-size', '16KB', ...db]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /duplicate key value violates unique constraint/);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: N / 4 }]);
    });
  });

  describe(`several inputs as one import on ${server.name}`, () => {
    it('files and a directory (sorted by name; hidden files and subdirectories skipped; gzip per file) load as one import', async () => {
      const t = await table(server, 'id int, src text');
      const d = join(dir, `${t}-day`);
      mkdirSync(join(d, 'sub'), { recursive: true });
      writeFileSync(join(d, 'b.csv'), 'id,src\n3,b\n4,b\n');
      writeFileSync(join(d, 'a.csv.gz'), gzipSync('id,src\n1,a\n2,a\n'));
      writeFileSync(join(d, '.hidden.csv'), 'id,src\n99,hidden\n');
      writeFileSync(join(d, 'sub', 'c.csv'), 'id,src\n98,sub\n');
      const lone = file(`${t}-lone.csv`, 'id,src\n5,lone\n');
      const r = await runCli(['import', d, lone, '--table', t, '--json', ...db]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { rows: number; files: number };
      assert.deepEqual([out.rows, out.files], [5, 3]);
      assert.deepEqual(await query(server, `SELECT id, src FROM ${t} ORDER BY id`), [
        { id: 1, src: 'a' },
        { id: 2, src: 'a' },
        { id: 3, src: 'b' },
        { id: 4, src: 'b' },
        { id: 5, src: 'lone' },
      ]);
    });

    it('all or nothing across files: a bad row in the last file names that file and line, and nothing is loaded', async () => {
      const t = await table(server, 'id int, src text');
      const files: string[] = [];
      for (let f = 0; f < 5; f++) {
        const lines = ['id,src'];
        for (let i = 1; i <= 3000; i++) lines.push(f === 4 && i === 2500 ? 'oops,x' : `${f * 3000 + i},f${f}`);
        files.push(file(`${t}-${f}.csv`, lines.join('\n') + '\n'));
      }
      const r = await runCli(['import', ...files, '--table', t, '--workers', '3', '--batch-size', '8KB', ...db]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^error: import into ${t} failed, at ${files[4]?.replace(/[.]/g, '\\.')}, line 2501, column id: invalid input syntax for type integer: "oops"$`, 'm'));
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 0 }]);
      // skip: the reject names its file in the log.
      const rejects = join(dir, `${t}.rejects.csv`);
      const s = await runCli(['import', ...files, '--table', t, '--on-error', 'skip', '--rejects', rejects, '--workers', '3', '--batch-size', '8KB', ...db]);
      assert.equal(s.code, 3, s.stderr);
      assert.equal(readFileSync(rejects, 'utf8'), 'id,src\noops,x\n');
      const log = JSON.parse(readFileSync(`${rejects}.log`, 'utf8')) as { file: string; line: number };
      assert.deepEqual([log.file, log.line], [files[4], 2501]);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 14_999 }]);
    });

    it('small files share a COPY; a file without a final newline, one with CRLF, and one ending in an open quote do not', async () => {
      const t = await table(server, 'id int, src text');
      const d = join(dir, `${t}-small`);
      mkdirSync(d);
      let id = 0;
      const names: string[] = [];
      for (let f = 0; f < 40; f++) {
        const name = `p${String(f).padStart(2, '0')}.csv`;
        names.push(join(d, name));
        const rows = Array.from({ length: 3 }, () => `${++id},"f${f}"`);
        // File 10 has no final newline, file 20 ends its lines with CRLF, file 30 is gzip.
        const text = f === 20 ? ['id,src', ...rows].join('\r\n') + '\r\n' : ['id,src', ...rows].join('\n') + (f === 10 ? '' : '\n');
        writeFileSync(join(d, name + (f === 30 ? '.gz' : '')), f === 30 ? gzipSync(text) : text);
      }
      const r = await runCli(['import', d, '--table', t, '--workers', '2', '--batch-size', '1KB', '--json', ...db]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { rows: number; files: number; batches: number };
      assert.deepEqual([out.rows, out.files], [120, 40]);
      // 40 files of about 40 bytes: about 25 to a 1 KB batch, cut where files cannot be joined.
      assert.ok(out.batches >= 4 && out.batches <= 8, `${out.batches} batches`);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids, min(id) AS lo, max(id) AS hi FROM ${t}`), [{ n: 120, ids: 120, lo: 1, hi: 120 }]);
      assert.deepEqual(await query(server, `SELECT src FROM ${t} WHERE id IN (30, 31, 61, 91) ORDER BY id`), [{ src: 'f9' }, { src: 'f10' }, { src: 'f20' }, { src: 'f30' }]);

      // A bad row in a file in the middle of a joined batch: its own file and line.
      const bad = join(d, 'p25.csv');
      writeFileSync(bad, 'id,src\n76,"f25"\nseventy-seven,"f25"\n78,"f25"\n');
      const e = await runCli(['import', d, '--table', t, '--workers', '2', '--batch-size', '1KB', ...db]);
      assert.equal(e.code, 1);
      assert.match(e.stderr, new RegExp(`^error: import into ${t} failed, at ${bad.replace(/[.]/g, '\\.')}, line 3, column id: invalid input syntax for type integer: "seventy-seven"$`, 'm'));
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 120 }]);

      // A file that ends inside a quoted field is not joined with the next: the error is its own.
      writeFileSync(bad, 'id,src\n76,"f25"\n77,"f25\n');
      const q = await runCli(['import', d, '--table', t, '--workers', '2', '--batch-size', '1KB', ...db]);
      assert.equal(q.code, 1);
      // (PostgreSQL counts the line after the open quote's newline: the file alone says the same.)
      assert.match(q.stderr, new RegExp(`at ${bad.replace(/[.]/g, '\\.')}, line 4: unterminated CSV quoted field$`, 'm'));
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 120 }]);
    });

    it('a file whose header differs from the first is an error naming it; so is one of another format', async () => {
      const t = await table(server, 'id int, src text');
      const a = file(`${t}-a.csv`, 'id,src\n1,a\n');
      const b = file(`${t}-b.csv`, 'src,id\nb,2\n');
      const r = await runCli(['import', a, b, '--table', t, ...db]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^error: ${b.replace(/[.]/g, '\\.')} has other columns than ${a.replace(/[.]/g, '\\.')}: src,id instead of id,src$`, 'm'));
      const j = file(`${t}-c.ndjson`, '{"id":3}\n');
      const mixed = await runCli(['import', a, j, '--table', t, ...db]);
      assert.equal(mixed.code, 2);
      assert.match(mixed.stderr, /is NDJSON by its name, but .* is CSV: one import reads one format/);
      const noTable = await runCli(['import', a, b, ...db]);
      assert.equal(noTable.code, 2);
      assert.match(noTable.stderr, /^error: --table is required with several inputs$/m);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 0 }]);
    });

    it('--import-id over many small files (batches joined across files): kill -9, then the same command loads the rest exactly once', async () => {
      const t = await table(server, 'id int, src text');
      const d = join(dir, `${t}-many`);
      mkdirSync(d);
      const FILES = 1500;
      const ROWS = 40;
      for (let f = 0; f < FILES; f++) {
        const lines = ['id,src'];
        for (let i = 1; i <= ROWS; i++) lines.push(`${f * ROWS + i},file ${f}`);
        // Some files without a final newline: their batches end there.
        writeFileSync(join(d, `p${String(f).padStart(4, '0')}.csv`), lines.join('\n') + (f % 97 === 0 ? '' : '\n'));
      }
      const total = FILES * ROWS;
      const args = ['import', d, '--table', t, '--import-id', t, '--workers', '1', '--batch-size', '4KB', '--json', ...db];
      const first = startCli(args, { DATAIO_LEASE_SECONDS: '3' });
      await waitFor('some batches in', async () => ((await query<{ n: number }>(server, `SELECT count(*)::int AS n FROM ${t}`))[0]?.n ?? 0) > 2_000);
      first.child.kill('SIGKILL');
      const killed = await first.done;
      assert.equal(killed.signal, 'SIGKILL');
      const partial = (await query<{ n: number }>(server, `SELECT count(*)::int AS n FROM ${t}`))[0]?.n ?? 0;
      assert.ok(partial < total, `the first run finished before it was killed (${partial} rows)`);
      // Batches of several files each: the ledger's batches reach far more files than there are batches.
      const [ledger] = await query<{ n: number; last: number }>(server, 'SELECT count(*)::int AS n, max(file_no) AS last FROM dataio.import_batches WHERE import_id = $1', [t]);
      assert.ok((ledger?.n ?? 0) > 0 && (ledger?.last ?? 0) > 2 * (ledger?.n ?? 0), JSON.stringify(ledger));
      const again = await runCli(args, { env: { DATAIO_LEASE_SECONDS: '3' } });
      assert.equal(again.code, 0, again.stderr);
      const out = JSON.parse(again.stdout) as { rows: number; earlierRows: number; batches: number };
      assert.equal(out.rows + out.earlierRows, total);
      assert.ok(out.batches < FILES / 2, `${out.batches} batches for ${FILES} files`);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, min(id) AS lo, max(id) AS hi FROM ${t}`), [{ n: total, d: total, lo: 1, hi: total }]);
      const done = await runCli(args, { env: { DATAIO_LEASE_SECONDS: '3' } });
      assert.equal(done.code, 0, done.stderr);
      assert.equal((JSON.parse(done.stdout) as { alreadyComplete?: boolean }).alreadyComplete, true);
    });

    it('--import-id over several files: kill -9, then the same command loads the rest exactly once', async () => {
      const t = await table(server, 'id int, src text');
      const files: string[] = [];
      for (let f = 0; f < 8; f++) {
        const lines = ['id,src'];
        for (let i = 1; i <= 40_000; i++) lines.push(`${f * 40_000 + i},file ${f}`);
        files.push(file(`${t}-${f}.csv`, lines.join('\n') + '\n'));
      }
      const args = ['import', ...files, '--table', t, '--import-id', t, '--workers', '2', '--batch-size', '64KB', ...db];
      const first = startCli(args, { DATAIO_LEASE_SECONDS: '3' });
      await waitFor('a few files in', async () => ((await query<{ n: number }>(server, `SELECT count(*)::int AS n FROM ${t}`))[0]?.n ?? 0) > 100_000);
      first.child.kill('SIGKILL');
      await first.done;
      const again = await runCli(args, { env: { DATAIO_LEASE_SECONDS: '3' } });
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, min(id) AS lo, max(id) AS hi FROM ${t}`), [{ n: 320_000, d: 320_000, lo: 1, hi: 320_000 }]);
    });
  });
}

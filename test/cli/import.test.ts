import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { scratch } from '../support/files.js';
import { query, runCli, testServers, uniqueName, type TestServer } from '../support/env.js';

const { file } = scratch('import');

async function create(server: TestServer, ddl: string): Promise<string> {
  const t = uniqueName('i');
  await query(server, `CREATE TABLE ${t} (${ddl})`);
  return t;
}

async function dump(server: TestServer, t: string, order = '1'): Promise<unknown[]> {
  return query(server, `SELECT * FROM ${t} ORDER BY ${order}`);
}

function bigCsv(rows: number, bad?: { at: number; value: string }): string {
  let s = 'id,name,amount\n';
  for (let i = 1; i <= rows; i++) s += `${i},"name ${i}${i % 50 === 0 ? '\nsecond line' : ''}",${bad && bad.at === i ? bad.value : i * 1.5}\n`;
  return s;
}

for (const server of testServers()) {
  const db = ['--db', server.url, '--progress', 'none'];
  describe(`import on ${server.name}`, () => {
    it('reads gzip files and stdin (plain and gzip)', async () => {
      const csv = 'id,name\n1,a\n2,"b\nc"\n';
      const gz = file('g.csv.gz', gzipSync(csv));
      for (const [args, stdin] of [
        [[gz], undefined],
        [['-'], csv],
        [['-'], gzipSync(csv)],
      ] as const) {
        const t = await create(server, 'id int, name text');
        const r = await runCli(['import', ...args, '--table', t, ...db], stdin === undefined ? {} : { stdin });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(await dump(server, t), [
          { id: 1, name: 'a' },
          { id: 2, name: 'b\nc' },
        ]);
      }
    });

    it('says which input line, column and value the server rejected, and loads nothing', async () => {
      const t = await create(server, 'id int, name text, amount numeric');
      // Records 50, 100, … 900 hold a newline: the 901st record is on input line 1 + 901 + 18.
      const f = file('bad.csv', bigCsv(1000, { at: 901, value: 'abc' }));
      const r = await runCli(['import', f, '--table', t, '--batch-size', '1KB', '--workers', '4', ...db]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: import into \S+ failed, at input line 920, column amount: invalid input syntax for type numeric: "abc"$/m);
      assert.doesNotMatch(r.stderr, /SQLSTATE/);
      assert.deepEqual(await dump(server, t), []);
      const v = await runCli(['import', f, '--table', t, '--verbose', ...db]);
      assert.equal(v.code, 1);
      assert.match(v.stderr, /SQLSTATE 22P02/);
    });

    it('maps header names to columns case-insensitively, and names a header that is no column', async () => {
      const t = await create(server, '"Id" int, name text');
      const ok = await runCli(['import', file('h.csv', 'NAME,id\nx,1\n'), '--table', t, ...db]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(await dump(server, t), [{ Id: 1, name: 'x' }]);
      const bad = await runCli(['import', file('h2.csv', 'id,nope\n1,2\n'), '--table', t, ...db]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /the input column "nope" is not a column of/);
    });

    it('takes --delimiter, --quote, --escape, --null, --no-header with --columns', async () => {
      const t = await create(server, 'a text, b text, c text');
      const f = file('d.csv', "x;'q;\\'z';NA\n;'';\n");
      const r = await runCli(['import', f, '--table', t, '--delimiter', ';', '--quote', "'", '--escape', '\\', '--null', 'NA', '--no-header', '--columns', 'c,b,a', ...db]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await dump(server, t, 'c'), [
        { a: '', b: '', c: '' },
        { a: null, b: "q;'z", c: 'x' },
      ]);
    });

    it('--encoding reads input in another encoding', async () => {
      const t = await create(server, 'id int, name text');
      const latin1 = Buffer.from([...Buffer.from('id,name\n1,caf'), 0xe9, 0x0a]);
      const r = await runCli(['import', file('l1.csv', latin1), '--table', t, '--encoding', 'LATIN1', ...db]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await dump(server, t), [{ id: 1, name: 'café' }]);
      const bad = await runCli(['import', file('l1.csv', latin1), '--table', t, ...db]);
      assert.equal(bad.code, 1, 'the same bytes are not valid UTF-8');
      assert.match(bad.stderr, /input line 2.*invalid byte sequence for encoding "UTF8"/);
    });

    it('loads TSV as PostgreSQL text format (escapes, \\N)', async () => {
      const t = await create(server, 'id int, note text');
      const r = await runCli(['import', file('t.tsv', 'id\tnote\n1\ta\\tb\\nc\n2\t\\N\n'), '--table', t, ...db]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await dump(server, t), [
        { id: 1, note: 'a\tb\nc' },
        { id: 2, note: null },
      ]);
    });

    it('--truncate replaces the rows, and a failed import keeps the old ones', async () => {
      const t = await create(server, 'id int primary key, name text');
      await query(server, `INSERT INTO ${t} VALUES (1, 'old'), (5, 'old')`);
      const ok = await runCli(['import', file('tr.csv', 'id,name\n1,new\n2,new\n'), '--table', t, '--truncate', ...db]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(await dump(server, t), [
        { id: 1, name: 'new' },
        { id: 2, name: 'new' },
      ]);
      const bad = await runCli(['import', file('tr2.csv', 'id,name\n7,x\nseven,y\n'), '--table', t, '--truncate', ...db]);
      assert.equal(bad.code, 1);
      assert.deepEqual(await dump(server, t), [
        { id: 1, name: 'new' },
        { id: 2, name: 'new' },
      ]);
    });

    it('fails instead of hanging when rows in two batches share a unique key', async () => {
      const t = await create(server, 'id int primary key, name text');
      let csv = 'id,name\n';
      for (let i = 1; i <= 3000; i++) csv += `${i === 2900 ? 5 : i},n${i}\n`;
      const r = await runCli(['import', file('dup.csv', csv), '--table', t, '--batch-size', '1KB', '--workers', '4', ...db]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /error: import into \S+ failed/);
      assert.match(r.stderr, /duplicate|unique/);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 0 }]);
      const one = await runCli(['import', file('dup.csv', csv), '--table', t, '--workers', '1', ...db]);
      assert.equal(one.code, 1);
      assert.match(one.stderr, /at input line 2901.*duplicate key value/);
    });

    it('on one connection, a bad row in the last of several batches leaves nothing; a one-batch file commits whole or not at all', async () => {
      // One connection begins its transaction only once a second batch shows (a lone batch is one
      // COPY, atomic by itself): were it to begin too late, the first batches would stay here.
      const t = await create(server, 'id int, name text');
      let csv = 'id,name\n';
      for (let i = 1; i <= 3000; i++) csv += `${i === 2990 ? 'x' : i},n${i}\n`;
      const several = await runCli(['import', file('last.csv', csv), '--table', t, '--workers', '1', '--batch-size', '2KB', '--json', ...db]);
      assert.equal(several.code, 1);
      assert.match(several.stderr, /at input line 2991/);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 0 }]);
      const lone = await runCli(['import', file('lone.csv', 'id,name\n1,a\n2,b\nthree,c\n'), '--table', t, ...db]);
      assert.equal(lone.code, 1);
      assert.match(lone.stderr, /at input line 4/);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 0 }]);
      const good = await runCli(['import', file('good.csv', 'id,name\n1,a\n2,b\n'), '--table', t, '--json', ...db]);
      assert.equal(good.code, 0, good.stderr);
      assert.equal((JSON.parse(good.stdout) as { batches: number }).batches, 1);
      const ok = await runCli(['import', file('ok.csv', csv.replace('\nx,', '\n2990,')), '--table', t, '--workers', '1', '--batch-size', '2KB', '--json', ...db]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.ok((JSON.parse(ok.stdout) as { batches: number }).batches > 2);
      assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 3002 }]);
    });

    it('--create drops the table it made when the import fails, and says to raise --sample', async () => {
      const t = uniqueName('c');
      const f = file('c.csv', bigCsv(300, { at: 250, value: 'N/A' }));
      const r = await runCli(['import', f, '--table', t, '--create', '--sample', '100', ...db]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /--sample/);
      assert.deepEqual(await query(server, 'SELECT to_regclass($1) AS r', [t]), [{ r: null }]);
      const ok = await runCli(['import', f, '--table', t, '--create', '--sample', '1000', ...db]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(await query(server, `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'amount'`, [t]), [{ t: 'text' }]);
    });

    it('--json prints the summary on stdout; --progress json writes JSON lines on stderr', async () => {
      const t = await create(server, 'id int, name text, amount numeric');
      const r = await runCli(['import', file('j.csv', bigCsv(2000)), '--table', t, '--json', '--db', server.url, '--progress', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(r.stdout) as { rows: number; bytes: number; table: string };
      assert.equal(summary.rows, 2000);
      const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { rows: number; percent?: number });
      assert.ok(lines.length >= 1);
      assert.equal(lines[lines.length - 1]?.rows, 2000);
      assert.equal(lines[lines.length - 1]?.percent, 100);
    });

    it('a header-only input loads zero rows; an empty input says it is empty', async () => {
      const t = await create(server, 'id int');
      const r = await runCli(['import', file('ho.csv', 'id\n'), '--table', t, ...db]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /imported 0 rows/);
      const e = await runCli(['import', file('empty.csv', ''), '--table', t, ...db]);
      assert.equal(e.code, 1);
      assert.match(e.stderr, /empty/);
    });

    it('uses fewer workers, with a warning, when the server has fewer connections free', async () => {
      const t = await create(server, 'id int, name text, amount numeric');
      // More than one batch: a small input is loaded over one connection whatever --workers says.
      const r = await runCli(['import', file('w.csv', bigCsv(100)), '--table', t, '--workers', '1000', '--batch-size', '1KB', ...db]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /warning: the server has \d+ free connections: using \d+ workers instead of 1000/);
    });
  });
}

for (const server of testServers().slice(0, 1)) {
  describe(`interrupting an import on ${server.name}`, () => {
    it('SIGTERM stops it, rolls back, drops the table --create made, exit 130', async () => {
      const { spawn } = await import('node:child_process');
      const { binPath } = await import('../support/env.js');
      const t = uniqueName('sig');
      const child = spawn(process.execPath, [binPath, 'import', '-', '--table', t, '--create', '--db', server.url, '--progress', 'none', '--batch-size', '1KB'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // Enough rows for several batches, then stdin stays open: the import waits for more.
      let csv = 'id,name\n';
      for (let i = 1; i <= 5000; i++) csv += `${i},n${i}\n`;
      child.stdin.write(csv);
      for (let i = 0; i < 100; i++) {
        const r = await query<{ r: string | null }>(server, 'SELECT to_regclass($1)::text AS r', [t]);
        if (r[0]?.r) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      await new Promise((res) => setTimeout(res, 500));
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((res) => child.on('close', res));
      assert.equal(code, 130, stderr);
      assert.match(stderr, /interrupted: everything it loaded was rolled back/);
      assert.deepEqual(await query(server, 'SELECT to_regclass($1) AS r', [t]), [{ r: null }]);
    });

    it('SIGTERM stops an export to a file and leaves no file, exit 130', async () => {
      const { spawn } = await import('node:child_process');
      const { readdirSync } = await import('node:fs');
      const { binPath } = await import('../support/env.js');
      const t = uniqueName('sigx');
      await query(server, `CREATE TABLE ${t} AS SELECT g AS id, md5(g::text) AS a, md5((g + 1)::text) AS b FROM generate_series(1, 1000000) g`);
      const outDir = scratch('sigx').dir;
      const child = spawn(process.execPath, [binPath, 'export', '--table', t, '-o', join(outDir, 'out.csv.gz'), '--workers', '1', '--db', server.url, '--progress', 'none']);
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // Wait until the export is under way (its temporary file exists), then interrupt it.
      for (let i = 0; i < 100 && readdirSync(outDir).length === 0; i++) await new Promise((res) => setTimeout(res, 50));
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((res) => child.on('close', res));
      assert.equal(code, 130, stderr);
      assert.match(stderr, /export of \S+ interrupted: .*out\.csv\.gz was not written/);
      assert.deepEqual(readdirSync(outDir), []);
      await query(server, `DROP TABLE ${t}`);
    });
  });
}

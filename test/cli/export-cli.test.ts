import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { binPath, query, repoRoot, runCli, testServers, uniqueName, type TestServer } from '../support/env.js';
import { createTypedTable, fingerprint, TYPED_COLUMNS } from '../integration/export-fixtures.js';

function tmpDir(): string {
  return mkdtempSync(join(tmpdir(), 'dataio-export-'));
}

/** psql's own \copy, the reference for byte identity (UTF8 whatever the locale says). */
function psqlCopy(server: TestServer, copy: string): Buffer {
  return execFileSync('psql', [server.url, '-X', '-q', '-c', copy], { env: { ...process.env, PGCLIENTENCODING: 'UTF8' }, maxBuffer: 1 << 28 });
}

/** Run `dataio … | head -c N` in a shell; resolves to dataio's exit code, its stderr and what head got. */
function intoHead(args: string[], bytes: number): Promise<{ code: number; stderr: string; got: number }> {
  return new Promise((resolve, reject) => {
    const quoted = [process.execPath, binPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const errFile = join(tmpDir(), 'stderr');
    const child = spawn('bash', ['-c', `${quoted} 2>"$ERRFILE" | head -c ${bytes} | wc -c; echo "\${PIPESTATUS[0]}"`], {
      env: { ...process.env, ERRFILE: errFile },
      cwd: repoRoot,
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const [got, code] = out.trim().split('\n').map(Number);
      resolve({ code: code ?? -1, got: got ?? -1, stderr: readFileSync(errFile, 'utf8') });
    });
  });
}

const noStack = /\bat .*\.js:\d+/;

for (const server of testServers()) {
  describe(`export CLI on ${server.name}`, () => {
    it('CSV round trip: export, import into an empty copy, same rows (every type)', async () => {
      const t = uniqueName('rt');
      await createTypedTable(server, t);
      const file = join(tmpDir(), `${t}.csv`);
      const exp = await runCli(['export', '--table', t, '-o', file, '--db', server.url]);
      assert.equal(exp.code, 0, exp.stderr);
      assert.match(exp.stderr, /exported 6 rows/);
      const copy = `${t}_copy`;
      await query(server, `CREATE TABLE ${copy} (${TYPED_COLUMNS})`);
      const imp = await runCli(['import', file, '--table', copy, '--db', server.url]);
      assert.equal(imp.code, 0, imp.stderr);
      const original = await fingerprint(server, t);
      assert.match(original, /^6:/);
      assert.equal(await fingerprint(server, copy), original);
    });

    it('CSV is byte-identical to psql \\copy, for a table and for a query (header, and without)', async () => {
      const t = uniqueName('ident');
      await createTypedTable(server, t);
      const table = await runCli(['export', '--table', t, '--db', server.url]);
      assert.equal(table.code, 0, table.stderr);
      assert.equal(table.stdoutBytes.toString('hex'), psqlCopy(server, `\\copy ${t} to stdout with (format csv, header true)`).toString('hex'));
      const q = `select id, txt, tags, raw, js from ${t} where id <> 3 order by id desc`;
      const viaQuery = await runCli(['export', '--query', q, '--no-header', '--db', server.url]);
      assert.equal(viaQuery.code, 0, viaQuery.stderr);
      assert.equal(viaQuery.stdoutBytes.toString('hex'), psqlCopy(server, `\\copy (${q}) to stdout with (format csv)`).toString('hex'));
    });

    it('TSV is PostgreSQL text format, header included, as psql gives it', async () => {
      const t = uniqueName('tsv');
      await createTypedTable(server, t);
      const r = await runCli(['export', '--table', t, '--format', 'tsv', '--db', server.url]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdoutBytes.toString('hex'), psqlCopy(server, `\\copy ${t} to stdout with (format text, header true)`).toString('hex'));
      assert.match(r.stdout, /^id\ttxt\tbig\t/);
    });

    it('format and gzip follow the -o extension', async () => {
      const dir = tmpDir();
      const q = 'select i as id, i * 2 as twice from generate_series(1, 3) i';
      const r = await runCli(['export', '--query', q, '-o', join(dir, 'x.ndjson.gz'), '--db', server.url]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(gunzipSync(readFileSync(join(dir, 'x.ndjson.gz'))).toString(), '{"id":1,"twice":2}\n{"id":2,"twice":4}\n{"id":3,"twice":6}\n');
      const j = await runCli(['export', '--query', q, '-o', join(dir, 'x.json'), '--db', server.url]);
      assert.equal(j.code, 0, j.stderr);
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'x.json'), 'utf8')), [
        { id: 1, twice: 2 },
        { id: 2, twice: 4 },
        { id: 3, twice: 6 },
      ]);
      assert.deepEqual(readdirSync(dir).sort(), ['x.json', 'x.ndjson.gz'], 'no temporary files left');
    });

    it('--query-file (trailing comment and semicolon), --gzip to stdout, progress as JSON lines on stderr', async () => {
      const dir = tmpDir();
      const file = join(dir, 'q.sql');
      writeFileSync(file, 'select i as n\n  from generate_series(1, 3) i -- three rows;\n;\n');
      const r = await runCli(['--progress', 'json', 'export', '--query-file', file, '--gzip', '--db', server.url]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(gunzipSync(r.stdoutBytes).toString(), 'n\n1\n2\n3\n');
      const last = JSON.parse(r.stderr.trim().split('\n').at(-1) as string) as Record<string, unknown>;
      assert.equal(last['rows'], 3);
      assert.equal(last['bytes'], 8);
      assert.equal(last['estimatedRows'], 3);
      assert.equal(last['percent'], 100);
    });

    it('zero rows as JSON is [] (valid JSON)', async () => {
      const r = await runCli(['export', '--query', 'select 1 as a where false', '--format', 'json', '--db', server.url]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '[]\n');
      assert.deepEqual(JSON.parse(r.stdout), []);
    });

    it('`| head` ends quietly with exit 0 when the reader goes away', async () => {
      const q = "select i, repeat('x', 200) from generate_series(1, 2000000) i";
      for (const format of ['csv', 'ndjson']) {
        const r = await intoHead(['export', '--query', q, '--format', format, '--db', server.url], 1000);
        assert.equal(r.got, 1000);
        assert.equal(r.code, 0, `${format}: exit code of dataio`);
        assert.equal(r.stderr, '', `${format}: nothing on stderr`);
      }
    });

    it('bad SQL: the server message in one line, exit 1, and -o leaves no file', async () => {
      const dir = tmpDir();
      const r = await runCli(['export', '--query', 'selec 1', '-o', join(dir, 'out.csv'), '--db', server.url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: export of the query failed: syntax error at or near "selec"$/m);
      assert.doesNotMatch(r.stderr, noStack);
      assert.deepEqual(readdirSync(dir), []);
    });

    it('a failure after rows were written leaves no file (not even a truncated one)', async () => {
      const dir = tmpDir();
      const q = 'select i, 1 / (200000 - i) from generate_series(1, 300000) i';
      const r = await runCli(['export', '--query', q, '-o', join(dir, 'out.csv'), '--db', server.url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: export of the query failed: division by zero$/m);
      assert.deepEqual(readdirSync(dir), []);
    });

    it('an unknown table is one line, exit 1', async () => {
      const name = uniqueName('missing');
      const r = await runCli(['export', '--table', name, '--db', server.url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^error: table ${name} does not exist$`, 'm'));
      assert.doesNotMatch(r.stderr, noStack);
    });

    it('an unwritable output fails before the export, exit 1, no file', async () => {
      const r = await runCli(['export', '--query', 'select 1', '-o', '/nonexistent-dir/out.csv', '--db', server.url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: cannot write \/nonexistent-dir\/out\.csv: its directory does not exist$/m);
      assert.equal(existsSync('/nonexistent-dir'), false);
      const dir = tmpDir();
      const onDir = await runCli(['export', '--query', 'select 1', '-o', dir, '--db', server.url]);
      assert.equal(onDir.code, 1);
      assert.match(onDir.stderr, /it is a directory/);
      assert.deepEqual(readdirSync(dir), [], 'the temporary file is removed');
    });

    it('--workers 4 on a table gives the same bytes as one connection', async () => {
      const t = uniqueName('par');
      await query(server, `CREATE TABLE ${t} AS SELECT i AS id, repeat(md5(i::text), 4) AS pad FROM generate_series(1, 40000) i`);
      const one = await runCli(['export', '--table', t, '--format', 'ndjson', '--db', server.url]);
      const four = await runCli(['export', '--table', t, '--format', 'ndjson', '--workers', '4', '--db', server.url]);
      assert.equal(four.code, 0, four.stderr);
      assert.equal(four.stdout.split('\n').length, 40001);
      assert.ok(four.stdoutBytes.equals(one.stdoutBytes));
    });
  });
}

describe('export CLI usage errors (exit 2)', () => {
  const db = ['--db', 'postgresql://x@127.0.0.1:1/x'];
  for (const [args, message] of [
    [['export', ...db], /exactly one of --table, --query or --query-file/],
    [['export', '--table', 't', '--query', 'select 1', ...db], /exactly one of/],
    [['export', '--query', 'select 1', '--workers', '2', ...db], /--workers needs --table/],
    [['export', '--table', 't', '--format', 'xml', ...db], /--format must be one of csv, tsv, ndjson, json/],
    [['export', '--table', 't', '--workers', '0', ...db], /--workers must be between 1 and 64/],
  ] as const) {
    it(args.slice(1, -2).join(' ') || '(no source)', async () => {
      const r = await runCli([...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    });
  }
});

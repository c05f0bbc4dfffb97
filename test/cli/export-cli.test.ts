import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { binPath, query, repoRoot, runCli, testServers, uniqueName, type CliResult, type TestServer } from '../support/env.js';
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

/** Run `dataio … > /dev/full` (every write fails with ENOSPC); resolves to the exit code and stderr. */
function intoFullDevice(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const full = openSync('/dev/full', 'w');
    const child = spawn(process.execPath, [binPath, ...args], { cwd: repoRoot, stdio: ['ignore', full, 'pipe'] });
    closeSync(full); // the child has its own
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

const noStack = /\bat .*\.js:\d+/;

const FORMATS = ['csv', 'tsv', 'ndjson', 'json'] as const;

/** A failed export as a user must see it: exit 1, one `error:` line, at most a `hint:` line, no stack. */
function assertOneLineError(r: CliResult, message: RegExp, what: string): void {
  assert.equal(r.code, 1, `${what}: exit code (stderr: ${r.stderr})`);
  assert.doesNotMatch(r.stderr, noStack, `${what}: no stack trace`);
  assert.doesNotMatch(r.stderr, /throw err|node:internal|Node\.js v/, `${what}: no uncaught exception`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.match(lines[0] ?? '', message, `${what}: the error line (stderr: ${r.stderr})`);
  assert.ok(lines.length === 1 || (lines.length === 2 && /^hint: \S/.test(lines[1] as string)), `${what}: one error line and at most a hint, got: ${r.stderr}`);
}

/**
 * Run a failing export in every format, to stdout and to `-o FILE`: each is one line and exit 1, and
 * `-o` leaves no file (not even a temporary one). `midStream`: rows reached stdout before the failure.
 */
async function assertFailsEverywhere(args: string[], message: RegExp, o: { midStream?: boolean; hint?: RegExp } = {}): Promise<void> {
  for (const format of FORMATS) {
    const toStdout = await runCli(['export', ...args, '--format', format]);
    assertOneLineError(toStdout, message, `${format} to stdout`);
    if (o.hint !== undefined) assert.match(toStdout.stderr, o.hint, `${format} to stdout: hint`);
    if (o.midStream === true) assert.ok(toStdout.stdoutBytes.length > 0, `${format} to stdout: the failure came after some rows`);
    const dir = tmpDir();
    const toFile = await runCli(['export', ...args, '--format', format, '-o', join(dir, `out.${format}`)]);
    assertOneLineError(toFile, message, `${format} to -o`);
    assert.equal(toFile.stdout, '', `${format} to -o: nothing on stdout`);
    assert.deepEqual(readdirSync(dir), [], `${format} to -o: no file left`);
  }
}

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

    // A server error at the start of the COPY or in its middle used to destroy process.stdout (pipeline
    // destroys every stream of a failed pipeline) and crash the CLI with the server error's stack.
    it('a query the server rejects at the start is one line and exit 1, in every format, to stdout and to -o', async () => {
      const db = ['--db', server.url];
      await assertFailsEverywhere(['--query', 'drop table big', ...db], /^error: export of the query failed: syntax error at or near "\w+"$/);
      const missing = uniqueName('missing');
      await assertFailsEverywhere(['--query', `select * from ${missing}`, ...db], new RegExp(`^error: export of the query failed: relation "${missing}" does not exist$`), {
        hint: /^hint: check the table names in the query/m,
      });
      await assertFailsEverywhere(['--query', 'select no_such_column from pg_class', ...db], /^error: export of the query failed: column "no_such_column" does not exist$/);
      // The planner folds the constant 1/0 (the CASE does not shield it), so this fails before any row.
      const folded = 'select case when g > 50000 then 1/0 else g end from generate_series(1, 100000) g';
      await assertFailsEverywhere(['--query', folded, ...db], /^error: export of the query failed: division by zero$/);
    });

    it('a query that fails mid-stream is one line and exit 1, in every format, to stdout and to -o', async () => {
      const q = 'select g, 1 / (50001 - g) from generate_series(1, 100000) g';
      await assertFailsEverywhere(['--query', q, '--db', server.url], /^error: export of the query failed: division by zero$/, {
        midStream: true,
        hint: /^hint: the server failed on a value while producing the rows/m,
      });
    });

    it('--workers 4: a failure in one range or in every range is one line and exit 1 (and with one connection)', async () => {
      // A role that is not a superuser: row-level security applies to it (a policy whose function fails
      // on one row, in the middle of the table), and a table it may not read fails every range's COPY.
      const role = uniqueName('exporter');
      const password = uniqueName('pw');
      const failing = uniqueName('rls');
      const denied = uniqueName('denied');
      await query(server, `CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
      await query(server, `CREATE FUNCTION ${failing}_check(id int) RETURNS boolean LANGUAGE plpgsql AS $$
                             BEGIN IF id = 30000 THEN PERFORM 1 / 0; END IF; RETURN true; END $$`);
      for (const t of [failing, denied]) {
        await query(server, `CREATE TABLE ${t} AS SELECT i AS id, repeat(md5(i::text), 4) AS pad FROM generate_series(1, 40000) i`);
      }
      await query(server, `ALTER TABLE ${failing} ENABLE ROW LEVEL SECURITY`);
      await query(server, `CREATE POLICY readable ON ${failing} FOR SELECT USING (${failing}_check(id))`);
      await query(server, `GRANT SELECT ON ${failing} TO ${role}`);
      const url = new URL(server.url);
      url.username = role;
      url.password = password;
      const db = ['--db', url.toString(), '--workers', '4'];
      const size = await query<{ blocks: number }>(server, `SELECT (pg_relation_size('${failing}') / current_setting('block_size')::int)::int AS blocks`);
      assert.ok((size[0]?.blocks ?? 0) >= 4 * 16, 'the table is cut into 4 ranges');
      // Whether earlier ranges reached stdout first depends on timing: the failing range's worker may
      // get there before the writer has written the ranges ahead of it.
      await assertFailsEverywhere(['--table', failing, ...db], new RegExp(`^error: export of ${failing} failed: division by zero$`));
      await assertFailsEverywhere(['--table', denied, ...db], new RegExp(`^error: export of ${denied} failed: permission denied for table ${denied}$`), {
        hint: /^hint: the database role lacks the privilege/m,
      });
      // The same with one connection, where the failing row comes after 29,999 written ones.
      await assertFailsEverywhere(['--table', failing, '--db', url.toString(), '--workers', '1'], /^error: export of \S+ failed: division by zero$/, { midStream: true });
    });

    it('--verbose adds the detail and the stack, after the error line', async () => {
      const r = await runCli(['export', '--query', 'select 1/0', '--verbose', '--db', server.url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: export of the query failed: division by zero\nhint: .+\ndetail: SQLSTATE 22012/);
      assert.match(r.stderr, /\n {4}at /, 'the stack, asked for');
    });

    it('an unknown table is one line, exit 1', async () => {
      const name = uniqueName('missing');
      const r = await runCli(['export', '--table', name, '--db', server.url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^error: table ${name} does not exist$`, 'm'));
      assert.doesNotMatch(r.stderr, noStack);
    });

    it('stdout that cannot be written (> /dev/full) is one line, exit 1', { skip: !existsSync('/dev/full') }, async () => {
      const r = await intoFullDevice(['export', '--query', 'select g from generate_series(1, 100000) g', '--db', server.url]);
      assertOneLineError({ code: r.code, stderr: r.stderr, stdout: '', stdoutBytes: Buffer.alloc(0) }, /^error: cannot write stdout: no space left on device$/, '> /dev/full');
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

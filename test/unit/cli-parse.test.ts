import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildProgram } from '../../src/cli/main.js';
import { commandName, formatFromPath, parseChar, parseColumnList, parsePositiveInt, parseSize, tableFromPath } from '../../src/cli/parse.js';
import { resolveConfig, resolveHome, resolveTarget } from '../../src/config.js';
import { DataioError } from '../../src/errors.js';
import { pgpassLookup, redactUrl } from '../../src/pg/connect.js';
import { displayName, parseTableName, qualifiedName, quoteIdent } from '../../src/pg/ident.js';
import { parseCopyWhere } from '../../src/pg/pg-errors.js';

const isUsage = (err: unknown) => err instanceof DataioError && err.code === 'USAGE';

describe('option parsing', () => {
  it('finds the command named: the first operand past the global options and their values', () => {
    const valued = new Set(['--db', '--progress']);
    assert.equal(commandName(['import', 'a.csv', '--table', 'export'], valued), 'import');
    assert.equal(commandName(['--db', 'postgresql://h/import', 'export', '--table', 'import'], valued), 'export');
    assert.equal(commandName(['--progress', 'none', '-q', 'doc-ls'], valued), 'doc-ls');
    assert.equal(commandName(['--db=postgresql://h/d', '-v', 'db', 'status'], valued), 'db');
    assert.equal(commandName(['imprt'], valued), 'imprt');
    assert.equal(commandName(['--help'], valued), undefined);
    assert.equal(commandName(['--db', 'x'], valued), undefined);
  });

  it('defines only the command named, past global options that take a value; all when none is named', () => {
    const io = { stdout: process.stdout, stderr: process.stderr, env: {}, uid: 1 };
    const defined = (args: string[]) => buildProgram(io, () => undefined, () => undefined, args).commands.map((c) => c.name());
    assert.deepEqual(defined(['--progress', 'none', '--db', 'postgresql://h/import', 'export', '--table', 'import']), ['export']);
    assert.deepEqual(defined(['doc-get', 'x']), ['doc-put', 'doc-get', 'doc-ls', 'doc-stat', 'doc-rm']);
    assert.deepEqual(defined(['--help']), ['import', 'export', 'doc-put', 'doc-get', 'doc-ls', 'doc-stat', 'doc-rm', 'db', 'setup']);
    assert.deepEqual(defined(['imprt']), defined([]));
  });

  it('reads sizes with binary units', () => {
    assert.equal(parseSize('1KB', '--x'), 1024);
    assert.equal(parseSize('8MB', '--x'), 8 * 1024 * 1024);
    assert.equal(parseSize('1gb', '--x'), 1024 ** 3);
    assert.equal(parseSize('1.5M', '--x'), 1.5 * 1024 * 1024);
    assert.equal(parseSize('4096', '--x'), 4096);
    for (const bad of ['', 'abc', '5XB', '-1MB', '0']) assert.throws(() => parseSize(bad, '--x'), isUsage, bad);
  });

  it('reads counts, characters, column lists', () => {
    assert.equal(parsePositiveInt('32', '--workers'), 32);
    assert.throws(() => parsePositiveInt('0', '--workers'), isUsage);
    assert.throws(() => parsePositiveInt('2.5', '--workers'), isUsage);
    assert.equal(parseChar('\\t', '--delimiter'), '\t');
    assert.equal(parseChar(';', '--delimiter'), ';');
    assert.throws(() => parseChar(';;', '--delimiter'), isUsage);
    assert.deepEqual(parseColumnList('a, b,c'), ['a', 'b', 'c']);
    assert.throws(() => parseColumnList('a,,b'), isUsage);
  });

  it('takes the format and the default table from the file name', () => {
    assert.equal(formatFromPath('x.csv.gz'), 'csv');
    assert.equal(formatFromPath('x.TSV'), 'tsv');
    assert.equal(formatFromPath('x.jsonl'), 'ndjson');
    assert.equal(formatFromPath('x.json.gz'), 'json');
    assert.equal(formatFromPath('x.txt'), undefined);
    assert.equal(tableFromPath('data/Users 2024.csv.gz'), 'users_2024');
    assert.equal(tableFromPath('2024.csv'), 't_2024');
    assert.equal(tableFromPath('-'), undefined);
  });
});

describe('configuration', () => {
  it('resolves --db > DATABASE_URL > PG* > embedded', () => {
    assert.deepEqual(resolveTarget('postgresql://a@h/d', { DATABASE_URL: 'postgresql://b@h/d' }), { kind: 'url', url: 'postgresql://a@h/d', source: '--db' });
    assert.deepEqual(resolveTarget(undefined, { DATABASE_URL: 'postgresql://b@h/d', PGHOST: 'x' }), { kind: 'url', url: 'postgresql://b@h/d', source: 'DATABASE_URL' });
    assert.deepEqual(resolveTarget(undefined, { PGHOST: 'x' }), { kind: 'pgenv' });
    assert.deepEqual(resolveTarget(undefined, {}), { kind: 'embedded' });
  });

  it('keeps the embedded server where its OS user can reach it', () => {
    assert.equal(resolveHome({ DATAIO_HOME: '/x' }, 0), '/x');
    assert.equal(resolveHome({}, 0), '/var/lib/dataio');
    assert.equal(resolveHome({ XDG_DATA_HOME: '/home/u/.data' }, 1000), '/home/u/.data/dataio');
  });

  it('rejects an unknown progress mode', () => {
    assert.throws(() => resolveConfig({ progress: 'fancy' }, {}, 1000), isUsage);
    assert.equal(resolveConfig({ progress: 'json' }, {}, 1000).progress, 'json');
  });

  it('never shows a password', () => {
    assert.equal(redactUrl('postgresql://u:secret@h:5432/db?sslmode=require'), 'postgresql://u:***@h:5432/db');
    assert.doesNotMatch(redactUrl('postgres://u@h/db?password=secret'), /secret/);
  });

  it('reads pgpass lines as libpq does', () => {
    const text = '# comment\nh:5432:db:u:p\\:w\n*:*:*:other:x\n';
    assert.equal(pgpassLookup(text, 'h', '5432', 'db', 'u'), 'p:w');
    assert.equal(pgpassLookup(text, 'any', '1', 'd', 'other'), 'x');
    assert.equal(pgpassLookup(text, 'h', '5433', 'db', 'u'), undefined);
  });
});

describe('identifiers', () => {
  it('quotes every name safely', () => {
    assert.equal(quoteIdent('select'), '"select"');
    assert.equal(quoteIdent('a"b'), '"a""b"');
  });

  it('parses table names as PostgreSQL does', () => {
    assert.deepEqual(parseTableName('T'), { name: 't' });
    assert.deepEqual(parseTableName('s.T'), { schema: 's', name: 't' });
    assert.deepEqual(parseTableName('"My Table"'), { name: 'My Table' });
    assert.deepEqual(parseTableName('"s"."a.b"'), { schema: 's', name: 'a.b' });
    assert.deepEqual(parseTableName('"a""b"'), { name: 'a"b' });
    assert.equal(qualifiedName(parseTableName('"s"."a.b"')), '"s"."a.b"');
    assert.equal(displayName({ name: 'My Table' }), '"My Table"');
    for (const bad of ['', 'a.', 'a.b.c', '"open', 'a"b']) assert.throws(() => parseTableName(bad), isUsage, bad);
  });
});

describe('server error context', () => {
  it('finds the line and column in a COPY error', () => {
    assert.deepEqual(parseCopyWhere('COPY t, line 3, column score: "abc"'), { line: 3, column: 'score' });
    assert.deepEqual(parseCopyWhere('COPY t, line 12'), { line: 12 });
    assert.deepEqual(parseCopyWhere(undefined), {});
  });
});

describe('worker count', () => {
  it('defaults to 32, or to the cores for a server on this machine', async () => {
    const { autoWorkers } = await import('../../src/workers.js');
    const { isLocalHost } = await import('../../src/pg/connect.js');
    assert.equal(autoWorkers(false, 2), 32);
    assert.equal(autoWorkers(true, 2), 2);
    assert.equal(autoWorkers(true, 1), 2);
    assert.equal(autoWorkers(true, 64), 32);
    const { autoBatchSize } = await import('../../src/workers.js');
    const mib = 1024 * 1024;
    assert.equal(autoBatchSize(2), 4 * mib);
    assert.equal(autoBatchSize(8), 4 * mib);
    assert.equal(autoBatchSize(16), 2 * mib);
    assert.equal(autoBatchSize(32), mib);
    assert.equal(autoBatchSize(1000), mib);
    for (const h of [undefined, '', 'localhost', '127.0.0.1', '[::1]', '/var/run/postgresql']) assert.ok(isLocalHost(h), String(h));
    for (const h of ['db.example.com', '10.0.0.5']) assert.ok(!isLocalHost(h), h);
  });
});

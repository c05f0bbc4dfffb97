/**
 * Exports on Citus (coordinator + 2 workers): a distributed table read shard by shard on the
 * workers gives psql's rows through the coordinator in every format; --nodes as for import; one cut
 * across the nodes under concurrent distributed writes (pg_dist_transaction held while the
 * snapshots are taken), and the summary saying when there is none; reference, local and plain
 * tables and queries through the coordinator.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import pg from 'pg';
import { query, runCli, uniqueName } from '../support/env.js';
import { scratch } from '../support/files.js';
import { tierServers, whySkipped, type TierServer } from '../support/tiers.js';

const ROWS = 100_000;
const { dir } = scratch('export-citus');

const q = (url: string, sql: string, params: unknown[] = []) => query({ name: 'citus', url }, sql, params);

/** psql's `\copy … to stdout` through the coordinator: the reference. */
function psql(url: string, copy: string): string {
  return execFileSync('psql', [url, '-X', '-q', '-c', copy], { env: { ...process.env, PGCLIENTENCODING: 'UTF8' }, maxBuffer: 1 << 28 }).toString('utf8');
}

/** The records of a CSV or text-format COPY, or of NDJSON, sorted (a quoted field may hold a newline). */
function sortedRecords(text: string, format: 'csv' | 'tsv' | 'ndjson'): string[] {
  if (format === 'csv') return (text.match(/(?:"(?:[^"]|"")*"|[^\n"])*\n/g) ?? []).sort();
  return text.split('\n').filter((l) => l !== '').sort();
}

/** A dataio JSON array (`[`, one row a line with a comma, `]`) as NDJSON lines. */
function jsonArrayLines(text: string): string[] {
  const lines = text.split('\n').filter((l) => l !== '');
  assert.equal(lines[0], '[');
  assert.equal(lines[lines.length - 1], ']');
  return lines.slice(1, -1).map((l) => l.replace(/,$/, ''));
}

interface Summary {
  rows: number;
  workers: number;
  streams: number;
  shards: number | null;
  nodes: number;
  consistentCut: boolean | null;
}

function summary(stderr: string): Summary {
  const line = stderr.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Summary;
}

const DDL = 'id bigint, s text, ts timestamptz, j jsonb, n numeric, b bytea, f double precision';
const FILL = `SELECT g,
       CASE WHEN g % 11 = 0 THEN NULL WHEN g % 5 = 0 THEN '' ELSE 'q"' || g || E',\\n\\\\ é 漢 😀 ''x''' END,
       CASE WHEN g % 13 = 0 THEN NULL ELSE timestamptz '2024-02-29 12:00:00+00' + g * interval '1 minute' END,
       CASE WHEN g % 17 = 0 THEN NULL ELSE jsonb_build_object('g', g, 'big', 9007199254740993, 't', 'a"b') END,
       g / 7.0, CASE WHEN g % 19 = 0 THEN NULL ELSE decode(lpad(to_hex(g), 8, '0'), 'hex') END, g / 3.0::float8
  FROM generate_series(1, ${ROWS}) g`;

const servers = tierServers('citus');
if (servers.length === 0) it('citus tier', { skip: whySkipped('citus') }, () => undefined);

for (const s of servers as TierServer[]) {
  const db = (url = s.url) => ['--db', url, '--progress', 'none', '--json'];
  const workers = s.workers ?? [];

  async function distributed(name = uniqueName('xd')): Promise<string> {
    await q(s.url, `CREATE TABLE ${name} (${DDL})`);
    await q(s.url, `SELECT create_distributed_table($1, 'id')`, [name]);
    await q(s.url, `INSERT INTO ${name} ${FILL}`);
    return name;
  }

  describe('exports on Citus', () => {
    let t: string;
    before(async () => {
      t = await distributed();
    });

    for (const format of ['csv', 'tsv', 'ndjson', 'json'] as const) {
      it(`a distributed table as ${format}, per shard over 4 connections on both workers: psql's rows through the coordinator`, async () => {
        const r = await runCli(['export', '--table', t, '--format', format, '--workers', '4', ...db()]);
        assert.equal(r.code, 0, r.stderr);
        const sum = summary(r.stderr);
        assert.deepEqual([sum.rows, sum.workers, sum.nodes, sum.shards, sum.streams, sum.consistentCut], [ROWS, 4, 2, 32, 32, true]);
        let expected: string[];
        let got: string[];
        if (format === 'csv' || format === 'tsv') {
          expected = sortedRecords(psql(s.url, `\\copy (select * from ${t}) to stdout with (format ${format === 'csv' ? 'csv' : 'text'}, header)`), format);
          got = sortedRecords(r.stdout, format);
          // The header once, first.
          assert.ok(r.stdout.startsWith(format === 'csv' ? 'id,s,ts,j,n,b,f\n' : 'id\ts\tts\tj\tn\tb\tf\n'));
          assert.equal(got.filter((l) => l.startsWith('id')).length, 1);
        } else {
          expected = sortedRecords(psql(s.url, `\\copy (select row_to_json(x) from ${t} x) to stdout with (format csv, quote e'\\x01', delimiter e'\\x02')`), 'ndjson');
          got = format === 'json' ? jsonArrayLines(r.stdout).sort() : sortedRecords(r.stdout, 'ndjson');
        }
        assert.equal(got.length, expected.length);
        assert.deepEqual(got, expected);
      });
    }

    it('--nodes: none reads through the coordinator in one stream; URLs of both workers per shard; one worker named: through the coordinator, with a warning', async () => {
      const all = sortedRecords(psql(s.url, `\\copy ${t} to stdout with (format csv)`), 'csv');
      const runs: [string[], number, number][] = [
        [['--nodes', 'none'], 1, 1],
        [['--nodes', workers.join(',')], 2, 32],
        [['--workers', '1'], 1, 1],
      ];
      for (const [extra, nodes, streams] of runs) {
        const r = await runCli(['export', '--table', t, '--no-header', '--workers', '2', ...extra, ...db()]);
        assert.equal(r.code, 0, r.stderr);
        const sum = summary(r.stderr);
        assert.deepEqual([sum.rows, sum.nodes, sum.streams], [ROWS, nodes, streams], extra.join(' '));
        assert.deepEqual(sortedRecords(r.stdout, 'csv'), all, extra.join(' '));
      }
      const one = await runCli(['export', '--table', t, '--no-header', '--nodes', workers[0] as string, ...db()]);
      assert.equal(one.code, 0, one.stderr);
      assert.match(one.stderr, /^warning: exporting .* over one connection: --nodes does not name the node holding shards of group \d+/m);
      assert.deepEqual([summary(one.stderr).rows, summary(one.stderr).streams], [ROWS, 1]);
      assert.deepEqual(sortedRecords(one.stdout, 'csv'), all);
    });

    it('a table with a quoted mixed-case name, to a file: shard names quoted as Citus names them', async () => {
      const name = `"Mixed ${uniqueName('Case')}"`;
      await q(s.url, `CREATE TABLE ${name} (id bigint, "Odd Col" text)`);
      await q(s.url, `SELECT create_distributed_table($1, 'id')`, [name]);
      await q(s.url, `INSERT INTO ${name} SELECT g, 'v' || g FROM generate_series(1, 5000) g`);
      const r = await runCli(['export', '--table', name, '-o', `${dir}/mixed.csv`, ...db()]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summary(r.stderr).shards, 32);
      const text = readFileSync(`${dir}/mixed.csv`, 'utf8');
      assert.ok(text.startsWith('id,Odd Col\n'));
      assert.deepEqual(sortedRecords(text, 'csv'), sortedRecords(psql(s.url, `\\copy (select * from ${name}) to stdout with (format csv, header)`), 'csv'));
    });

    it('an append-distributed table is read per shard too; one with no shard through the coordinator', async () => {
      const ap = uniqueName('xap');
      await q(s.url, `CREATE TABLE ${ap} (id bigint, v text)`);
      await q(s.url, `SELECT create_distributed_table($1, 'id', 'append')`, [ap]);
      const empty = await runCli(['export', '--table', ap, ...db()]);
      assert.equal(empty.code, 0, empty.stderr);
      assert.equal(empty.stdout, 'id,v\n');
      assert.match(empty.stderr, /over one connection: the table has no shards/);
      for (let k = 0; k < 3; k++) {
        const [shard] = await q(s.url, `SELECT master_create_empty_shard($1) AS id`, [ap]);
        await q(s.url, `COPY ${ap} FROM PROGRAM 'seq ${k * 1000 + 1} ${k * 1000 + 1000} | sed s/$/,x/' WITH (FORMAT csv, append_to_shard ${String((shard as { id: string }).id)})`);
      }
      const r = await runCli(['export', '--table', ap, '--no-header', ...db()]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual([summary(r.stderr).rows, summary(r.stderr).shards], [3000, 3]);
      assert.deepEqual(sortedRecords(r.stdout, 'csv'), sortedRecords(psql(s.url, `\\copy ${ap} to stdout with (format csv)`), 'csv'));
    });

    it('one cut across the nodes while distributed transactions commit; a role that may not lock pg_dist_transaction gets every row and consistentCut false', async () => {
      const cut = uniqueName('cut');
      await q(s.url, `CREATE TABLE ${cut} (id int, v bigint)`);
      await q(s.url, `SELECT create_distributed_table($1, 'id')`, [cut]);
      await q(s.url, `INSERT INTO ${cut} SELECT g, 0 FROM generate_series(1, 2000) g`);
      // Every transaction adds 1 to every row, on both workers (two-phase commit): a consistent read sees one value.
      let writing = true;
      let commits = 0;
      const writer = (async () => {
        const c = new pg.Client({ connectionString: s.url });
        await c.connect();
        try {
          while (writing) {
            await c.query(`UPDATE ${cut} SET v = v + 1`);
            commits++;
          }
        } finally {
          await c.end();
        }
      })();
      try {
        for (let i = 0; i < 8; i++) {
          const r = await runCli(['export', '--table', cut, '--no-header', ...db()]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(summary(r.stderr).consistentCut, true);
          const values = new Set(r.stdout.trim().split('\n').map((l) => l.split(',')[1]));
          assert.equal(values.size, 1, `export ${i + 1} saw ${values.size} different values: a distributed commit half seen`);
        }
        assert.ok(commits > 8, `only ${commits} distributed commits ran alongside`);
      } finally {
        writing = false;
        await writer;
      }
      const role = uniqueName('reader');
      await q(s.url, `CREATE ROLE ${role} LOGIN`);
      await q(s.url, `GRANT SELECT ON ${t} TO ${role}`);
      const url = new URL(s.url);
      url.username = role;
      const r = await runCli(['export', '--table', t, '--no-header', ...db(url.toString())]);
      assert.equal(r.code, 0, r.stderr);
      const sum = summary(r.stderr);
      assert.deepEqual([sum.rows, sum.nodes, sum.consistentCut], [ROWS, 2, false]);
    });

    it('reference, Citus local and plain coordinator tables, and a query (-c): through the coordinator, psql\'s rows', async () => {
      const ref = uniqueName('xref');
      const local = uniqueName('xlocal');
      const plain = uniqueName('xplain');
      for (const name of [ref, local, plain]) {
        await q(s.url, `CREATE TABLE ${name} (${DDL})`);
        await q(s.url, `INSERT INTO ${name} ${FILL.replace(String(ROWS), '20000')}`);
      }
      await q(s.url, `SELECT create_reference_table($1)`, [ref]);
      await q(s.url, `SELECT citus_add_local_table_to_metadata($1)`, [local]);
      for (const [name, streams] of [[ref, 1], [local, 1], [plain, null]] as const) {
        const r = await runCli(['export', '--table', name, ...db()]);
        assert.equal(r.code, 0, `${name}: ${r.stderr}`);
        const sum = summary(r.stderr);
        assert.deepEqual([sum.rows, sum.nodes, sum.shards], [20_000, 1, null], name);
        if (streams !== null) assert.equal(sum.streams, streams, name);
        assert.deepEqual(sortedRecords(r.stdout, 'csv'), sortedRecords(psql(s.url, `\\copy (select * from ${name}) to stdout with (format csv, header)`), 'csv'), name);
      }
      const sql = `select id, s from ${t} where id % 3 = 0`;
      const r = await runCli(['export', '-c', sql, '--format', 'ndjson', ...db()]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual([summary(r.stderr).rows, summary(r.stderr).streams], [Math.floor(ROWS / 3), 1]);
      assert.deepEqual(
        sortedRecords(r.stdout, 'ndjson'),
        sortedRecords(psql(s.url, `\\copy (select row_to_json(x) from (${sql}) x) to stdout with (format csv, quote e'\\x01', delimiter e'\\x02')`), 'ndjson'),
      );
    });
  });
}

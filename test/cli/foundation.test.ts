import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { scratch } from '../support/files.js';
import { embeddedServer, query, runCli, testServers, uniqueName } from '../support/env.js';

const SAMPLE = 'id,name,score,seen_at,ok\n1,ann,1.5,2024-01-01T00:00:00Z,true\n2,"b, ""q""",,2024-02-01T10:00:00Z,false\n';

const { file: tmpFile } = scratch('cli');

function psqlAvailable(): boolean {
  try {
    execFileSync('psql', ['--version']);
    return true;
  } catch {
    return false;
  }
}

describe('cli basics', () => {
  it('prints its version and help with exit 0', async () => {
    const v = await runCli(['--version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+/);
    for (const cmd of ['import', 'export', 'doc-put', 'doc-get', 'doc-ls', 'doc-stat', 'doc-rm', 'db']) {
      const h = await runCli([cmd, '--help']);
      assert.equal(h.code, 0, `${cmd} --help`);
      assert.match(h.stdout, /Example/, `${cmd} --help shows an example`);
    }
  });

  it('gives a usage error (exit 2) for an unknown flag, without a stack trace', async () => {
    const r = await runCli(['import', 'x.csv', '--no-such-flag']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '--no-such-flag'/);
    assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
  });

  it('says in one line that a missing input file is missing (exit 1)', async () => {
    const r = await runCli(['import', '/nonexistent/file.csv', '--table', 't', '--db', 'postgresql://x@127.0.0.1:1/x']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: input file not found: \/nonexistent\/file\.csv$/m);
    assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
  });

  it('says the database is unreachable, without the password', async () => {
    const f = tmpFile('a.csv', SAMPLE);
    const r = await runCli(['import', f, '--table', 't', '--db', 'postgresql://u:sekret@127.0.0.1:1/x']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot connect to .*127\.0\.0\.1:1.*connection refused/);
    assert.doesNotMatch(r.stderr + r.stdout, /sekret/);
  });
});

for (const server of testServers()) {
  describe(`cli on ${server.name}`, () => {
    it('--create infers bigint, text, numeric, timestamptz, boolean and export gives both rows back as psql would', async () => {
      const table = uniqueName('people');
      const f = tmpFile('people.csv', SAMPLE);
      const imp = await runCli(['import', f, '--table', table, '--create', '--db', server.url]);
      assert.equal(imp.code, 0, imp.stderr);
      const types = await query<{ attname: string; t: string }>(
        server,
        `SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 ORDER BY attnum`,
        [table],
      );
      assert.deepEqual(
        types.map((r) => `${r.attname}:${r.t}`),
        ['id:bigint', 'name:text', 'score:numeric', 'seen_at:timestamp with time zone', 'ok:boolean'],
      );
      const exp = await runCli(['export', '--table', table, '--format', 'csv', '--db', server.url]);
      assert.equal(exp.code, 0, exp.stderr);
      const rows = await query<{ id: string; name: string; score: string | null; ok: boolean }>(server, `SELECT * FROM ${table} ORDER BY id`);
      assert.equal(rows.length, 2);
      assert.equal(rows[1]?.name, 'b, "q"');
      assert.equal(rows[1]?.score, null);
      if (psqlAvailable()) {
        const viaPsql = execFileSync('psql', [server.url, '-X', '-c', `\\copy ${table} to stdout with (format csv, header true)`]);
        assert.equal(exp.stdoutBytes.toString('hex'), viaPsql.toString('hex'));
      }
      assert.match(exp.stdout, /^id,name,score,seen_at,ok\n1,ann,1\.5,/);
    });

    it('an unknown table is one line and exit 1', async () => {
      const f = tmpFile('x.csv', SAMPLE);
      const r = await runCli(['import', f, '--table', uniqueName('missing'), '--db', server.url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: table \S+ does not exist$/m);
    });
  });
}

const embedded = embeddedServer();
if (embedded?.home) {
  const home = embedded.home;
  describe('the embedded default', () => {
    it('a wrong password is one line naming the user, exit 1, no password shown', async () => {
      const u = new URL(embedded.url);
      u.password = 'not-the-password';
      const r = await runCli(['export', '--table', 'x', '--db', u.toString()]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: cannot connect to .*: password authentication failed for user "postgres"$/m);
      assert.doesNotMatch(r.stderr, /not-the-password/);
    });

    it('is used when no database is named, and db url works with psql', async () => {
      const table = uniqueName('emb');
      const f = tmpFile('e.csv', SAMPLE);
      const imp = await runCli(['import', f, '--table', table, '--create'], { env: { DATAIO_HOME: home } });
      assert.equal(imp.code, 0, imp.stderr);
      const url = await runCli(['db', 'url'], { env: { DATAIO_HOME: home } });
      assert.equal(url.code, 0);
      assert.doesNotMatch(url.stdout, /:[^@/]+@/, 'no password in the URL');
      if (psqlAvailable()) {
        const out = execFileSync('psql', [url.stdout.trim(), '-X', '-At', '-c', `select count(*) from ${table}`]).toString().trim();
        assert.equal(out, '2');
      }
      const st = await runCli(['db', 'status'], { env: { DATAIO_HOME: home } });
      assert.equal(st.code, 0);
      assert.match(st.stdout, /running: yes/);
      assert.match(st.stdout, /PostgreSQL 18/);
    });
  });
}

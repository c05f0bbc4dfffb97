/**
 * Reaching a production database: TLS with sslmode=verify-full and sslrootcert (in the URL and in PG*
 * variables), a wrong CA as one line; and a least-privileged role (INSERT and SELECT on its table, no
 * CREATE anywhere) that still imports all or nothing and exports, is told what --import-id needs, and
 * gets everything after the owner's one-time `dataio setup --grant`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scratch } from '../support/files.js';
import { query, runCli, testServers, uniqueName, withUrlPath } from '../support/env.js';
import { tierServers, whySkipped } from '../support/tiers.js';

const { file } = scratch('import-access');

function rows(n: number, bad?: number): string {
  const lines = ['id,name'];
  for (let i = 1; i <= n; i++) lines.push(i === bad ? `${i}x,bad` : `${i},name ${i}`);
  return lines.join('\n') + '\n';
}

const tls = tierServers('tls');
if (tls.length === 0) it('tls tier', { skip: whySkipped('tls') }, () => undefined);
for (const s of tls) {
  describe('TLS (sslmode=verify-full)', () => {
    const plain = new URL(s.url);
    plain.search = '';
    const setupTable = async (): Promise<string> => {
      const t = uniqueName('tls');
      await query({ name: 'tls', url: plain.toString() }, `CREATE TABLE ${t} (id int, name text)`);
      return t;
    };

    it('with the CA in the URL: import and export work over an encrypted connection', async () => {
      const t = await setupTable();
      const r = await runCli(['import', file(`${t}.csv`, rows(3000)), '--table', t, '--db', s.url, '--progress', 'none', '--batch-size', '16KB']);
      assert.equal(r.code, 0, r.stderr);
      const e = await runCli(['export', '--table', t, '--db', s.url]);
      assert.equal(e.code, 0, e.stderr);
      assert.equal(e.stdout.trim().split('\n').length, 3001);
      assert.deepEqual(await query({ name: 'tls', url: s.url }, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'), [{ ssl: true }]);
    });

    it('with PGSSLMODE=verify-full and PGSSLROOTCERT, as libpq reads them', async () => {
      const t = await setupTable();
      const env = { PGHOST: plain.hostname, PGPORT: plain.port, PGUSER: decodeURIComponent(plain.username), PGDATABASE: plain.pathname.slice(1), PGSSLMODE: 'verify-full', PGSSLROOTCERT: s.caFile };
      const r = await runCli(['import', file(`${t}.csv`, rows(10)), '--table', t, '--progress', 'none'], { env });
      assert.equal(r.code, 0, r.stderr);
      const wrong = await runCli(['export', '--table', t], { env: { ...env, PGSSLROOTCERT: s.wrongCaFile } });
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /^error: cannot connect to .*: the server certificate could not be verified \(.+\)$/m);
    });

    it('a wrong CA is one line saying the certificate could not be verified, no stack trace; a missing CA file is a usage error', async () => {
      const t = await setupTable();
      const u = new URL(s.url);
      u.searchParams.set('sslrootcert', s.wrongCaFile as string);
      const r = await runCli(['import', file(`${t}.csv`, rows(10)), '--table', t, '--db', u.toString(), '--progress', 'none']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: cannot connect to .*: the server certificate could not be verified \((unable to verify the first certificate|self[- ]signed certificate in certificate chain)\)$/m);
      assert.match(r.stderr, /^hint: check sslrootcert \(or PGSSLROOTCERT\): it must be the CA that signed the server certificate/m);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(r.stderr.trim().split('\n').length, 2);
      u.searchParams.set('sslrootcert', '/nonexistent/ca.crt');
      const missing = await runCli(['export', '--table', t, '--db', u.toString()]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /^error: cannot read the sslrootcert file \/nonexistent\/ca\.crt: ENOENT$/m);
    });
  });
}

for (const server of testServers()) {
  describe(`a least-privileged role on ${server.name}`, () => {
    it('imports (all or nothing, over one connection) and exports; --import-id names the setup; after dataio setup --grant it gets all', async () => {
      const role = uniqueName('app');
      const t = uniqueName('acc');
      await query(server, `CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
      await query(server, `CREATE TABLE ${t} (id int, name text)`);
      await query(server, `GRANT INSERT, SELECT ON ${t} TO ${role}`);
      const url = withUrlPath(server.url, new URL(server.url).pathname.slice(1), { name: role, password: 'pw' });
      const db = ['--db', url, '--progress', 'none'];
      const args = (input: string, ...more: string[]) => ['import', input, '--table', t, '--workers', '2', '--batch-size', '16KB', '--json', ...more, ...db];
      try {
        const bad = await runCli(args(file(`${t}-bad.csv`, rows(5000, 4500))));
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /at input line 4501/);
        assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 0 }]);
        const ok = await runCli(args(file(`${t}.csv`, rows(5000))));
        assert.equal(ok.code, 0, ok.stderr);
        assert.equal((JSON.parse(ok.stdout) as { commit: string }).commit, 'one connection');
        assert.match(ok.stderr, new RegExp(`^loading over one connection: this role may not use the dataio schema \\(dataio setup --grant ${role} enables parallel loading\\)$`, 'm'));
        const e = await runCli(['export', '--table', t, ...db]);
        assert.equal(e.code, 0, e.stderr);
        assert.equal(e.stdout.trim().split('\n').length, 5001);

        const resumable = await runCli(args(file(`${t}-2.csv`, rows(10)), '--import-id', t));
        assert.equal(resumable.code, 1);
        assert.match(resumable.stderr, new RegExp(`^error: role ${role} may not (use|create) the dataio schema, which keeps the ledger of resumable imports \\(--import-id\\)`, 'm'));
        assert.match(resumable.stderr, new RegExp(`^hint: ask .* to run once: dataio setup --grant ${role}`, 'm'));

        const setup = await runCli(['setup', '--grant', role, '--db', server.url]);
        assert.equal(setup.code, 0, setup.stderr);
        await query(server, `TRUNCATE ${t}`);
        const parallel = await runCli(args(file(`${t}.csv`, rows(5000))));
        assert.equal(parallel.code, 0, parallel.stderr);
        const out = JSON.parse(parallel.stdout) as { commit: string; workers: number };
        assert.notEqual(out.commit, 'one connection');
        assert.equal(out.workers, 2);
        const again = await runCli(args(file(`${t}-3.csv`, rows(10)), '--import-id', t));
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(await query(server, `SELECT count(*)::int AS n FROM ${t}`), [{ n: 5010 }]);
      } finally {
        await query(server, `DROP TABLE IF EXISTS ${t}`);
        await query(server, `DROP OWNED BY ${role}`).catch(() => undefined);
        await query(server, `DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
      }
    });
  });
}

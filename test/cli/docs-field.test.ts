/**
 * Documents where users' databases are: behind PgBouncer in transaction and session mode (nothing
 * stays on the pooled server connections: no advisory lock, no prepared statement, no changed
 * setting; a doc-rm right after a doc-get works; a killed upload resumes once its lease lapses), the
 * leases between writers and readers, an older dataio's document tables brought up to date, and a
 * Citus cluster (chunks distributed by seq over both workers; put, resume, get, ls, stat, rm; a
 * damaged chunk is caught).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type pg from 'pg';
import { scratch } from '../support/files.js';
import { binPath, query, repoRoot, runCli, uniqueName, withUrlPath } from '../support/env.js';
import { startCli, waitFor } from '../support/resume.js';
import { forTier } from '../support/tiers.js';

const { file } = scratch('docs-field');
const KiB = 1024;
const CHUNK = 64 * KiB;
/** Short leases, so that a killed process's lapse within a test. */
const env = { DATAIO_LEASE_SECONDS: '2' };
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function q<R extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  return query<R>({ name: 'tier', url }, sql, params);
}

async function storedChunks(url: string, name: string): Promise<number> {
  const r = await q<{ n: number }>(url, `SELECT count(c.*)::int AS n FROM dataio.documents d LEFT JOIN dataio.chunks c ON c.doc = d.id WHERE d.name = $1`, [name]).catch(() => [{ n: 0 }]);
  return r[0]?.n ?? 0;
}

/** A doc-put from stdin, fed `first` bytes of `data` and then left waiting, ready to be killed. */
async function stalledPut(url: string, name: string, data: Buffer, first: number, watch: string): Promise<{ child: ChildProcess; id: string }> {
  const child = spawn(process.execPath, [binPath, 'doc-put', '-', '--name', name, '--chunk-size', '64KB', '--workers', '2', '--db', url, '--progress', 'none'], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin?.on('error', () => undefined);
  child.stdin?.write(data.subarray(0, first));
  await waitFor('chunks to arrive', async () => (await storedChunks(watch, name)) >= Math.floor(first / CHUNK) - 4);
  const [doc] = await q<{ id: string }>(watch, 'SELECT id::text FROM dataio.documents WHERE name = $1', [name]);
  return { child, id: doc?.id ?? '' };
}

async function kill9(child: ChildProcess): Promise<void> {
  assert.equal(child.exitCode, null, 'the process ended before it could be killed');
  const closed = new Promise((r) => child.once('close', r));
  child.kill('SIGKILL');
  await closed;
}

/** Put a random document; its id and bytes. */
async function put(db: string[], bytes: number, chunkSize = '64KB'): Promise<{ id: string; data: Buffer; path: string }> {
  const data = randomBytes(bytes);
  const path = file(`${uniqueName('d')}.bin`, data);
  const r = await runCli(['doc-put', path, '--chunk-size', chunkSize, '--workers', '3', ...db], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), ID);
  return { id: r.stdout.trim(), data, path };
}

async function getBytes(db: string[], id: string): Promise<Buffer> {
  const r = await runCli(['doc-get', id, '--workers', '3', ...db], { env });
  assert.equal(r.code, 0, r.stderr);
  return r.stdoutBytes;
}

/** Put killed with kill -9 part-way, then --resume: the document equals the file. */
async function killedThenResumed(url: string, watch: string): Promise<void> {
  const db = ['--db', url, '--progress', 'none'];
  const data = randomBytes(120 * CHUNK + 999);
  const name = uniqueName('killed');
  const { child, id } = await stalledPut(url, name, data, 60 * CHUNK, watch);
  await kill9(child);
  const [row] = await q<{ state: string; owner: string | null }>(watch, 'SELECT state, owner FROM dataio.documents WHERE id = $1', [id]);
  assert.equal(row?.state, 'uploading');
  assert.notEqual(row?.owner, null, 'the killed writer left its lease');
  const resumed = await runCli(['doc-put', file(`${name}.bin`, data), '--resume', id, ...db], { env });
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(resumed.stdout, `${id}\n`);
  assert.match(resumed.stderr, /in 121 chunks, \d+ of them already stored/);
  assert.ok((await getBytes(db, id)).equals(data));
}

/**
 * The document tables as an earlier dataio made them (no leases, no readers table), holding one
 * complete two-chunk document named "old"; its bytes.
 */
async function olderTables(url: string): Promise<Buffer> {
  const data = randomBytes(100_000);
  const [a, b] = [data.subarray(0, CHUNK), data.subarray(CHUNK)];
  const sha = (x: Buffer) => `sha256('\\x${x.toString('hex')}'::bytea)`;
  const id = '00000000-0000-4000-8000-000000000001';
  await q(
    url,
    `CREATE SCHEMA IF NOT EXISTS dataio;
     CREATE TABLE dataio.documents (id uuid PRIMARY KEY, name text, content_type text, size bigint, chunk_size integer NOT NULL, chunk_count integer,
       sha256 bytea, chunks_sha256 bytea, state text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), completed_at timestamptz);
     CREATE TABLE dataio.chunks (doc uuid NOT NULL REFERENCES dataio.documents (id), seq integer NOT NULL, sha256 bytea NOT NULL, data bytea NOT NULL, PRIMARY KEY (doc, seq));
     INSERT INTO dataio.documents VALUES ('${id}', 'old', NULL, ${data.length}, ${CHUNK}, 2, ${sha(data)}, sha256(${sha(a)} || ${sha(b)}), 'complete', now(), now());
     INSERT INTO dataio.chunks VALUES ('${id}', 0, ${sha(a)}, '\\x${a.toString('hex')}'), ('${id}', 1, ${sha(b)}, '\\x${b.toString('hex')}')`,
  );
  return data;
}

describe('documents in the field', () => {
  for (const tier of ['pgbouncer-transaction', 'pgbouncer-session'] as const) {
    forTier(tier, (s) => {
      const direct = s.directUrl ?? '';
      const db = ['--db', s.url, '--progress', 'none'];

      /** Nothing of dataio's stays on the server's connections, nor in its lease tables. */
      async function clean(): Promise<void> {
        assert.deepEqual(await q(direct, "SELECT locktype, pid FROM pg_locks WHERE locktype = 'advisory'"), []);
        // Many clients at once through the pooler reach every pooled server connection.
        const seen = await Promise.all(
          Array.from({ length: 12 }, () =>
            q<{ sc: string; lt: string; prepared: number; temp: number }>(
              s.url,
              `SELECT current_setting('synchronous_commit') AS sc, current_setting('lock_timeout') AS lt, (SELECT count(*)::int FROM pg_prepared_statements) AS prepared,
                      (SELECT count(*)::int FROM pg_class WHERE relpersistence = 't') AS temp, pg_sleep(0.05) IS NULL AS slept`,
            ),
          ),
        );
        for (const [row] of seen) assert.deepEqual({ sc: row?.sc, lt: row?.lt, prepared: row?.prepared, temp: row?.temp }, { sc: 'on', lt: '0', prepared: 0, temp: 0 });
        assert.deepEqual(await q(direct, 'SELECT doc FROM dataio.document_readers'), []);
        assert.deepEqual(await q(direct, "SELECT id FROM dataio.documents WHERE owner IS NOT NULL AND state = 'complete'"), []);
      }

      it('doc-put, doc-get give the bytes back; doc-rm right after a doc-get removes it; nothing left on the pooled connections', async () => {
        const { id, data } = await put(db, 3 * 1024 * KiB + 17);
        assert.ok((await getBytes(db, id)).equals(data));
        const stat = await runCli(['doc-stat', id, '--json', ...db]);
        assert.equal(stat.code, 0, stat.stderr);
        assert.equal((JSON.parse(stat.stdout) as { state: string }).state, 'complete');
        const rm = await runCli(['doc-rm', id, ...db]);
        assert.equal(rm.code, 0, rm.stderr);
        const gone = await runCli(['doc-get', id, ...db]);
        assert.equal(gone.code, 1);
        assert.match(gone.stderr, /no stored document has the id or name/);
        await clean();
      });

      it('a doc-put killed with kill -9: --resume takes over once its lease lapses, and completes it equal to the file', async () => {
        await killedThenResumed(s.url, direct);
        await clean();
      });

      if (tier === 'pgbouncer-transaction') {
        it('a resume beside a live upload is refused clearly; after the upload is killed, resume takes over', async () => {
          const data = randomBytes(100 * CHUNK);
          const name = uniqueName('live');
          const path = file(`${name}.bin`, data);
          const { child, id } = await stalledPut(s.url, name, data, 40 * CHUNK, direct);
          const refused = await runCli(['doc-put', path, '--resume', id, ...db], { env });
          assert.equal(child.exitCode, null, 'the upload ended while the resume waited');
          assert.equal(refused.code, 1);
          assert.match(refused.stderr, new RegExp(`^error: cannot resume the upload of document ${id}: another dataio process is writing or removing it$`, 'm'));
          assert.match(refused.stderr, /^hint: wait for it to finish \(or stop it\), then run this again; if that process was killed, its lease lapses within \d+ s$/m);
          const rm = await runCli(['doc-rm', id, ...db], { env });
          assert.equal(rm.code, 1);
          assert.match(rm.stderr, /cannot remove document .*: another dataio process is writing or removing it/);
          await kill9(child);
          const resumed = await runCli(['doc-put', path, '--resume', id, ...db], { env });
          assert.equal(resumed.code, 0, resumed.stderr);
          assert.ok((await getBytes(db, id)).equals(data));
          await clean();
        });

        it('doc-rm while a doc-get runs waits, then refuses clearly; once the doc-get ends, doc-rm removes it', async () => {
          const { id, data } = await put(db, 4 * 1024 * KiB);
          // A doc-get whose reader does not read: it stalls with its stdout pipe full, its lease held.
          const get = spawn(process.execPath, [binPath, 'doc-get', id, ...db], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
          const closed = new Promise<number | null>((r) => get.once('close', r));
          await waitFor('the reader lease', async () => (await q(direct, 'SELECT 1 FROM dataio.document_readers WHERE doc = $1', [id])).length === 1);
          const rm = await runCli(['doc-rm', id, ...db], { env });
          assert.equal(rm.code, 1);
          assert.match(rm.stderr, new RegExp(`^error: cannot remove document ${id}: another dataio process is reading it$`, 'm'));
          // Its lease is renewed while it waits (longer than a lease).
          assert.equal(get.exitCode, null);
          const out: Buffer[] = [];
          get.stdout?.on('data', (d: Buffer) => out.push(d));
          get.stderr?.resume();
          assert.equal(await closed, 0);
          assert.ok(Buffer.concat(out).equals(data));
          const again = await runCli(['doc-rm', id, ...db], { env });
          assert.equal(again.code, 0, again.stderr);
          await clean();
        });

        it("an earlier dataio's document tables take the lease columns and the readers table; its documents read back", async () => {
          const dbName = uniqueName('olddocs');
          await q(direct, `CREATE DATABASE ${dbName}`);
          const url = withUrlPath(direct, dbName);
          const data = await olderTables(url);
          const old = ['--db', url, '--progress', 'none'];
          assert.ok((await getBytes(old, 'old')).equals(data));
          const cols = await q<{ n: number }>(url, "SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 'dataio.documents'::regclass AND attname IN ('owner', 'lease_until')");
          assert.deepEqual(cols, [{ n: 2 }]);
          const fresh = await put(old, 200_000);
          assert.ok((await getBytes(old, fresh.id)).equals(fresh.data));
          const rm = await runCli(['doc-rm', 'old', ...old]);
          assert.equal(rm.code, 0, rm.stderr);
        });
      }
    }, 'documents');
  }

  forTier('citus', (s) => {
    const db = ['--db', s.url, '--progress', 'none'];
    const workerPorts = (s.workers ?? []).map((u) => Number(new URL(u).port)).sort();

    /** The worker ports whose shards hold chunks of document `id`. */
    async function nodesHolding(id: string): Promise<number[]> {
      const r = await q<{ nodeport: number }>(
        s.url,
        `SELECT DISTINCT s.nodeport FROM run_command_on_shards('dataio.chunks', $$SELECT count(*) FROM %s WHERE doc = '${id}'$$) x
           JOIN citus_shards s ON s.shardid = x.shardid WHERE x.success AND x.result::int > 0 ORDER BY 1`,
      );
      return r.map((x) => x.nodeport);
    }

    /** How Citus keeps dataio's document tables. */
    async function kinds(): Promise<{ t: string; kind: string; col: string | null }[]> {
      return q(
        s.url,
        `SELECT table_name::text AS t, citus_table_type AS kind, nullif(distribution_column, '<none>') AS col FROM citus_tables
          WHERE table_name::text IN ('dataio.chunks', 'dataio.documents', 'dataio.document_readers') ORDER BY 1`,
      );
    }
    const DISTRIBUTED = [
      { t: 'dataio.chunks', kind: 'distributed', col: 'seq' },
      { t: 'dataio.document_readers', kind: 'reference', col: null },
      { t: 'dataio.documents', kind: 'reference', col: null },
    ];

    it("an earlier dataio's plain document tables on the coordinator are distributed in place, its document readable", async (t) => {
      const [made] = await q<{ ok: boolean }>(s.url, "SELECT to_regclass('dataio.documents') IS NOT NULL AS ok");
      if (made?.ok === true) {
        t.skip('this cluster has document tables already');
        return;
      }
      const data = await olderTables(s.url);
      assert.deepEqual(await kinds(), []);
      assert.ok((await getBytes(db, 'old')).equals(data));
      assert.deepEqual(await kinds(), DISTRIBUTED);
      // The coordinator's own copy of the moved rows is gone: its table is empty on disk.
      assert.deepEqual(await q(s.url, "SELECT pg_relation_size('dataio.chunks')::int AS n"), [{ n: 0 }]);
      const rm = await runCli(['doc-rm', 'old', ...db]);
      assert.equal(rm.code, 0, rm.stderr);
      assert.match(rm.stderr, /2 chunks/);
    });

    it('doc-put makes the chunk table distributed by seq, one document spread over both workers; doc-get, ls, stat, rm work', async () => {
      const { id, data } = await put(db, 100 * CHUNK + 5);
      assert.deepEqual(await kinds(), DISTRIBUTED);
      assert.equal(workerPorts.length, 2);
      assert.deepEqual(await nodesHolding(id), workerPorts);
      assert.ok((await getBytes(db, id)).equals(data));
      const ls = await runCli(['doc-ls', '--json', ...db]);
      assert.equal(ls.code, 0, ls.stderr);
      const listed = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; state: string; storedChunks: number });
      assert.deepEqual(listed.find((d) => d.id === id), { ...listed.find((d) => d.id === id), state: 'complete', storedChunks: 101 });
      const stat = await runCli(['doc-stat', id, '--json', ...db]);
      assert.equal(stat.code, 0, stat.stderr);
      const st = JSON.parse(stat.stdout) as { size: number; chunks: number; storedBytes: number };
      assert.deepEqual([st.size, st.chunks, st.storedBytes], [data.length, 101, data.length]);
      const rm = await runCli(['doc-rm', id, ...db]);
      assert.equal(rm.code, 0, rm.stderr);
      assert.match(rm.stderr, /101 chunks/);
      assert.deepEqual(await q(s.url, 'SELECT count(*)::int AS n FROM dataio.chunks WHERE doc = $1', [id]), [{ n: 0 }]);
      const gone = await runCli(['doc-get', id, ...db]);
      assert.equal(gone.code, 1);
    });

    it('an upload killed with kill -9 shows its stored chunks in doc-stat, and --resume completes it equal to the file', async () => {
      const data = randomBytes(120 * CHUNK + 999);
      const name = uniqueName('killed');
      const { child, id } = await stalledPut(s.url, name, data, 60 * CHUNK, s.url);
      // The chunks went straight to the workers holding their shards.
      for (const w of s.workers ?? []) {
        assert.notDeepEqual(await q(w, "SELECT pid FROM pg_stat_activity WHERE application_name = 'dataio doc-put'"), [], `no doc-put connection on ${w}`);
      }
      await kill9(child);
      const stat = await runCli(['doc-stat', id, '--json', ...db]);
      assert.equal(stat.code, 0, stat.stderr);
      const st = JSON.parse(stat.stdout) as { state: string; storedChunks: number; storedBytes: number };
      assert.equal(st.state, 'uploading');
      assert.ok(st.storedChunks >= 50 && st.storedBytes === st.storedChunks * CHUNK, stat.stdout);
      const resumed = startCli(['doc-put', file(`${name}.bin`, data), '--resume', id, ...db], env);
      const r = await resumed.done;
      assert.equal(r.code, 0, r.stderr);
      assert.ok((await getBytes(db, id)).equals(data));
      assert.deepEqual(await nodesHolding(id), workerPorts);
    });

    it('a document of 4 MB chunks (each fetched from its one shard) comes back equal, spread over both workers', async () => {
      const { id, data } = await put(db, 5 * 4 * 1024 * KiB + 3, '4MB');
      assert.ok((await getBytes(db, id)).equals(data));
      assert.deepEqual(await nodesHolding(id), workerPorts);
    });

    it('after dataio setup --grant ROLE, that role puts (straight into the shards), gets and removes documents', async () => {
      const role = uniqueName('docrole');
      await q(s.url, `CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
      const setup = await runCli(['setup', '--grant', role, ...db]);
      assert.equal(setup.code, 0, setup.stderr);
      const as = ['--db', withUrlPath(s.url, new URL(s.url).pathname.slice(1), { name: role, password: 'pw' }), '--progress', 'none'];
      const { id, data } = await put(as, 20 * CHUNK);
      assert.ok((await getBytes(as, id)).equals(data));
      const rm = await runCli(['doc-rm', id, ...as]);
      assert.equal(rm.code, 0, rm.stderr);
    });

    it('a flipped stored byte is caught by doc-get', async () => {
      const { id } = await put(db, 10 * CHUNK);
      await q(s.url, `UPDATE dataio.chunks SET data = overlay(data PLACING set_byte('\\x00'::bytea, 0, 255 - get_byte(data, 0)) FROM 1 FOR 1) WHERE doc = $1 AND seq = 2`, [id]);
      const get = await runCli(['doc-get', id, ...db]);
      assert.equal(get.code, 1);
      assert.match(get.stderr, /^error: integrity check failed for document \S+: chunk 2 \(bytes 131072–196607\) does not match its SHA-256$/m);
    });
  }, 'documents');
});

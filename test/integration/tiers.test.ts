/**
 * Each tier is what it claims to be: the default-settings server has no prepared transactions, the
 * transaction pooler moves a client between server connections (and carries COPY), the session pooler
 * keeps it on one, the Citus cluster has three nodes and takes COPY through a worker, and the TLS
 * server verifies with its CA and not with another. A tier not available here is a skipped test.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { it } from 'node:test';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { backendPid } from '../../src/pg/backend.js';
import { runCli, uniqueName } from '../support/env.js';
import { forTier } from '../support/tiers.js';

/** The server process serving this connection now (behind a pooler: for the current transaction). */
async function serverPid(client: pg.Client): Promise<number> {
  const r = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return (r.rows[0] as { pid: number }).pid;
}

async function connected(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

async function withConn<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connected(url);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** `rows` lines "i<TAB>row i" into `table` with COPY FROM STDIN, through pg-copy-streams. */
async function copyRows(url: string, table: string, rows: number): Promise<void> {
  await withConn(url, async (c) => {
    const lines = function* () {
      for (let i = 1; i <= rows; i++) yield `${i}\trow ${i}\n`;
    };
    await pipeline(Readable.from(lines()), c.query(copyFrom(`COPY ${table} (id, v) FROM STDIN`)));
  });
}

async function one<T>(url: string, sql: string, params: unknown[] = []): Promise<T> {
  return withConn(url, async (c) => {
    const row = (await c.query(sql, params)).rows[0] as object | undefined;
    return (row === undefined ? undefined : Object.values(row)[0]) as T;
  });
}

forTier('pg15-default', (s) => {
  it('is PostgreSQL 15 with the default settings: max_prepared_transactions 0, so PREPARE TRANSACTION is refused', async () => {
    await withConn(s.url, async (c) => {
      const show = async (name: string) => ((await c.query(`SHOW ${name}`)).rows[0] as Record<string, string>)[name];
      assert.match(await show('server_version_num'), /^15\d{4}$/);
      assert.equal(await show('max_prepared_transactions'), '0');
      assert.equal(await show('max_connections'), '100');
      await c.query('BEGIN');
      await assert.rejects(c.query(`PREPARE TRANSACTION '${uniqueName('gid')}'`), /prepared transactions are disabled/);
      await c.query('ROLLBACK');
    });
  });
});

/** The server pid each client's next statement runs on. */
async function pids(...clients: pg.Client[]): Promise<number[]> {
  const out: number[] = [];
  for (const c of clients) out.push(await serverPid(c));
  return out;
}

forTier('pgbouncer-transaction', (s) => {
  const direct = s.directUrl as string;

  it('is a pooler: the protocol pid is made up, the server pid is a live backend of the direct server', async () => {
    assert.ok(direct, 'directUrl is set');
    await withConn(s.url, async (c) => {
      const server = await serverPid(c);
      assert.notEqual(backendPid(c), server);
      assert.equal(await one<number>(direct, 'SELECT count(*)::int FROM pg_stat_activity WHERE pid = $1', [server]), 1);
    });
  });

  it("moves a client's next transaction to another server connection while other clients hold its last one", async () => {
    const a = await connected(s.url);
    const holders = await Promise.all([1, 2, 3].map(() => connected(s.url)));
    try {
      const [a1] = await pids(a);
      // Between transactions a holds no server connection: the holders' transactions take a1 among others.
      for (const h of holders) await h.query('BEGIN');
      const held = await pids(...holders);
      assert.ok(held.includes(a1 as number), `a's server connection ${a1} went to another client (held: ${held.join(', ')})`);
      assert.equal(new Set(held).size, held.length, 'each open transaction has a server connection of its own');
      const [a2] = await pids(a);
      assert.notEqual(a2, a1);
      assert.ok(!held.includes(a2 as number));
    } finally {
      for (const h of holders) await h.query('COMMIT').catch(() => undefined);
      await Promise.all([a, ...holders].map((c) => c.end()));
    }
  });

  it('leaves a session advisory lock behind on the server connection after the client is gone', async () => {
    const key = Math.floor(Math.random() * 2 ** 30);
    let pid = 0;
    await withConn(s.url, async (c) => {
      pid = await serverPid(c);
      await c.query('SELECT pg_advisory_lock($1)', [key]);
    });
    try {
      const holder = await one<number | null>(direct, "SELECT max(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted", [key]);
      assert.equal(holder, pid);
    } finally {
      await one(direct, 'SELECT pg_terminate_backend($1)', [pid]);
    }
  });

  it('carries COPY FROM STDIN', async () => {
    const table = uniqueName('tier_copy');
    await one(direct, `CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    try {
      await copyRows(s.url, table, 5000);
      assert.equal(await one<number>(direct, `SELECT count(*)::int FROM ${table}`), 5000);
      assert.equal(await one<string>(direct, `SELECT v FROM ${table} WHERE id = 4321`), 'row 4321');
    } finally {
      await one(direct, `DROP TABLE ${table}`);
    }
  });
});

forTier('pgbouncer-session', (s) => {
  const direct = s.directUrl as string;

  it("keeps a client on one server connection across its transactions, other clients' on others", async () => {
    assert.ok(direct, 'directUrl is set');
    const a = await connected(s.url);
    const b = await connected(s.url);
    try {
      const [a1] = await pids(a);
      assert.notEqual(backendPid(a), a1, 'the protocol pid is made up by the pooler');
      await b.query('BEGIN');
      const [b1] = await pids(b);
      const [a2] = await pids(a);
      await b.query('COMMIT');
      const [a3] = await pids(a);
      assert.notEqual(b1, a1);
      assert.equal(a2, a1);
      assert.equal(a3, a1);
      assert.equal(await one<number>(direct, 'SELECT count(*)::int FROM pg_stat_activity WHERE pid = $1', [a1]), 1);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  it("resets the server connection when the client leaves (DISCARD ALL drops the client's advisory lock)", async () => {
    const key = Math.floor(Math.random() * 2 ** 30);
    await withConn(s.url, async (c) => {
      await c.query('SELECT pg_advisory_lock($1)', [key]);
      assert.equal(await one<number>(direct, "SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND objid = $1", [key]), 1);
    });
    let left = 1;
    for (let i = 0; i < 100 && left > 0; i++) {
      await sleep(50);
      left = await one<number>(direct, "SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND objid = $1", [key]);
    }
    assert.equal(left, 0);
  });

  it('carries COPY FROM STDIN', async () => {
    const table = uniqueName('tier_copy');
    await one(direct, `CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    try {
      await copyRows(s.url, table, 5000);
      assert.equal(await one<number>(direct, `SELECT count(*)::int FROM ${table}`), 5000);
    } finally {
      await one(direct, `DROP TABLE ${table}`);
    }
  });
});

forTier('citus', (s) => {
  it('is a coordinator with two workers, and a hash-distributed table takes COPY through a worker', async () => {
    const workers = s.workers ?? [];
    assert.equal(workers.length, 2);
    assert.equal(await one<number>(s.url, 'SELECT count(*)::int FROM pg_dist_node'), 3);
    const ports = await withConn(s.url, async (c) => (await c.query<{ nodeport: number }>('SELECT nodeport FROM pg_dist_node WHERE groupid > 0 ORDER BY nodeport')).rows.map((r) => r.nodeport));
    assert.deepEqual(ports, workers.map((w) => Number(new URL(w).port)).sort((x, y) => x - y));

    const table = uniqueName('tier_dist');
    await withConn(s.url, async (c) => {
      await c.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, v text)`);
      await c.query(`SELECT create_distributed_table('${table}', 'id')`);
    });
    try {
      await copyRows(workers[0] as string, table, 10000);
      assert.equal(await one<number>(s.url, `SELECT count(*)::int FROM ${table}`), 10000);
      assert.equal(await one<string>(workers[1] as string, `SELECT v FROM ${table} WHERE id = 777`), 'row 777');
      // The rows are in shards on both workers.
      const nodes = await one<number>(s.url, `SELECT count(DISTINCT nodeport)::int FROM citus_shards WHERE table_name = '${table}'::regclass`);
      assert.equal(nodes, 2);
    } finally {
      await one(s.url, `DROP TABLE ${table}`);
    }
  });
});

forTier('tls', (s) => {
  const plain = (url: string) => {
    const u = new URL(url);
    u.search = '';
    return u.toString();
  };
  const verifyFull = (host: string, ca: string) => {
    const u = new URL(plain(s.url));
    u.hostname = host;
    return `${u.toString()}?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`;
  };
  const sslOfSession = 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()';

  it('verify-full with its CA connects over TLS, by IP address and by name', async () => {
    assert.ok(s.caFile && s.wrongCaFile);
    assert.equal(await one<boolean>(s.url, sslOfSession), true);
    assert.equal(await one<boolean>(verifyFull('127.0.0.1', s.caFile), sslOfSession), true);
    assert.equal(await one<boolean>(verifyFull('localhost', s.caFile), sslOfSession), true);
  });

  it('verify-full with an unrelated CA is refused', async () => {
    await assert.rejects(one(verifyFull('127.0.0.1', s.wrongCaFile as string), 'SELECT 1'), (err: Error & { code?: string }) => {
      assert.match(`${err.code} ${err.message}`, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|certificate/i);
      return true;
    });
  });

  it('still accepts plain connections', async () => {
    assert.equal(await one<boolean>(plain(s.url), sslOfSession), false);
  });

  it('bin/dataio verifies against NODE_EXTRA_CA_CERTS, which it reads only for such a connection', async () => {
    // verify-full without sslrootcert: the default store, which NODE_EXTRA_CA_CERTS adds to.
    const u = new URL(plain(s.url));
    u.searchParams.set('sslmode', 'verify-full');
    const exportSsl = (env: Record<string, string | undefined>, viaNode = false) =>
      runCli(['export', '--db', u.toString(), '--query', sslOfSession, '--format', 'csv', '--no-header'], { env, viaNode });
    const ok = await exportSsl({ NODE_EXTRA_CA_CERTS: s.caFile });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), 't');
    // The same through `node bin/dataio`, where Node read the file as it started.
    const viaNode = await exportSsl({ NODE_EXTRA_CA_CERTS: s.caFile }, true);
    assert.equal(viaNode.code, 0, viaNode.stderr);
    assert.equal(viaNode.stdout.trim(), 't');
    for (const env of [{ NODE_EXTRA_CA_CERTS: undefined }, { NODE_EXTRA_CA_CERTS: s.wrongCaFile }]) {
      const refused = await exportSsl(env);
      assert.equal(refused.code, 1, `${JSON.stringify(env)}: ${refused.stdout}`);
      assert.match(refused.stderr, /certificate/i);
    }
  });
});

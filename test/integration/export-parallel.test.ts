import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import pg from 'pg';
import { RAW_ROWS } from '../../src/export/copy-out-parser.js';
import { exportRanges, type RangeExportOptions, type RangeExportResult } from '../../src/export/parallel.js';
import { query, testServers, uniqueName, type TestServer } from '../support/env.js';

const ACCOUNTS = 20_000;

async function connect(server: TestServer): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: server.url });
  // As dataio's own clients: a connection that dies is reported by the query that uses it.
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/**
 * exportRanges of a table over connections this test opens (all recorded in `opened`). Small ranges
 * and buffers: many more ranges than the 2 × workers in flight, so later ranges start well after the
 * first ones.
 */
async function exportTable(
  server: TestServer,
  table: string,
  o: { workers: number; header?: boolean; opened: pg.Client[] },
  consume: (chunks: AsyncIterable<Buffer>) => Promise<void>,
): Promise<RangeExportResult> {
  const open = async () => {
    const c = await connect(server);
    o.opened.push(c);
    return c;
  };
  const options: RangeExportOptions = {
    source: { kind: 'table', sql: table, plain: true },
    format: 'csv',
    header: o.header ?? false,
    workers: o.workers,
    shaper: () => RAW_ROWS,
    tally: { rows: 0 },
    highWaterMark: 16 * 1024,
    maxRangeBlocks: 16,
    connect: open,
  };
  return exportRanges(await open(), options, consume);
}

/**
 * A writer that keeps committing, one transaction after another on one connection: each moves one
 * unit from an account near the start of the table to one near its end (an UPDATE writes the new
 * row version elsewhere, often on the last pages) and inserts a new account. Any snapshot sees the
 * effect of exactly the first k transactions, for some k.
 */
class Writer {
  readonly log: { from: number; to: number; added: number }[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(client: pg.Client, table: string) {
    this.done = (async () => {
      await client.query('SET synchronous_commit = off');
      let added = ACCOUNTS;
      let seed = 7;
      const rand = (n: number) => (seed = (seed * 48271) % 2147483647) % n;
      while (!this.stopped) {
        const from = 1 + rand(ACCOUNTS / 10);
        const to = ACCOUNTS - rand(ACCOUNTS / 10);
        added++;
        // Logged before COMMIT: a snapshot may see a transaction whose COMMIT has not returned yet.
        this.log.push({ from, to, added });
        await client.query(
          `BEGIN;
           UPDATE ${table} SET balance = balance - 1 WHERE id = ${from};
           UPDATE ${table} SET balance = balance + 1 WHERE id = ${to};
           INSERT INTO ${table} VALUES (${added}, 0, repeat('n', 200));
           COMMIT`,
        );
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/** The k for which the exported balances are the state after the first k logged transactions, or -1. */
function matchingPrefix(exported: Map<number, number>, log: Writer['log']): number {
  const state = new Map<number, number>();
  for (let id = 1; id <= ACCOUNTS; id++) state.set(id, 100);
  let mismatches = 0;
  const diff = (id: number) => (exported.get(id) === state.get(id) ? 0 : 1);
  for (const id of new Set([...state.keys(), ...exported.keys()])) mismatches += diff(id);
  if (mismatches === 0) return 0;
  for (let k = 0; k < log.length; k++) {
    const { from, to, added } = log[k] as Writer['log'][number];
    for (const [id, delta] of [
      [from, -1],
      [to, 1],
      [added, 0],
    ] as const) {
      mismatches -= diff(id);
      state.set(id, (state.get(id) ?? 0) + delta);
      mismatches += diff(id);
    }
    if (mismatches === 0) return k + 1;
  }
  return -1;
}

for (const server of testServers()) {
  describe(`parallel export on ${server.name}`, () => {
    it('4 connections while another keeps writing: exactly one snapshot, every row once, in table order', async () => {
      const t = uniqueName('acct');
      await query(
        server,
        `CREATE TABLE ${t} (id int, balance int, pad text) WITH (fillfactor = 100);
         INSERT INTO ${t} SELECT i, 100, repeat('p', 200) FROM generate_series(1, ${ACCOUNTS}) i`,
      );
      await query(server, `VACUUM ANALYZE ${t}`);
      const writerClient = await connect(server);
      const writer = new Writer(writerClient, t);
      const clients: pg.Client[] = [];
      const chunks: Buffer[] = [];
      let result: RangeExportResult;
      try {
        await sleep(100);
        result = await exportTable(server, t, { workers: 4, opened: clients }, async (source) => {
          for await (const chunk of source) {
            chunks.push(chunk);
            await sleep(2);
          }
        });
      } finally {
        await writer.stop();
        await writerClient.end();
        await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      }
      assert.equal(result.workers, 4);
      assert.ok(result.ranges > 8, `many ranges (${result.ranges})`);
      assert.ok(writer.log.length > 20, `the writer kept writing (${writer.log.length} transactions)`);

      const balances = new Map<number, number>();
      const lines = Buffer.concat(chunks).toString('utf8').trimEnd().split('\n');
      for (const line of lines) {
        const [id, balance] = line.split(',').map(Number) as [number, number];
        assert.equal(balances.has(id), false, `account ${id} exported once`);
        balances.set(id, balance);
      }
      assert.equal(result.rows, lines.length);
      const k = matchingPrefix(balances, writer.log);
      assert.ok(k >= 0, 'the export is the state after some prefix of the committed transactions');
      // The writer committed transactions while the export ran, after its snapshot.
      assert.ok(k < writer.log.length, `the snapshot (after ${k}) predates the writer's last transactions (${writer.log.length})`);
    });

    it('in table order: the same bytes as a single COPY of a quiet table, with the header once', async () => {
      const t = uniqueName('ord');
      await query(server, `CREATE TABLE ${t} AS SELECT i AS id, repeat('q', 300) AS pad FROM generate_series(1, 5000) i`);
      const chunks: Buffer[] = [];
      const r = await exportTable(server, t, { workers: 3, header: true, opened: [] }, async (source) => {
        for await (const chunk of source) chunks.push(chunk);
      });
      assert.equal(r.rows, 5000);
      const single = await query<{ body: string }>(server, `SELECT 'id,pad' || E'\\n' || string_agg(id || ',' || pad, E'\\n' ORDER BY ctid) || E'\\n' AS body FROM ${t}`);
      assert.equal(Buffer.concat(chunks).toString('utf8'), single[0]?.body);
    });

    it('a worker that dies fails the export, and every connection is closed', async () => {
      const t = uniqueName('die');
      await query(server, `CREATE TABLE ${t} AS SELECT i AS id, repeat('d', 300) AS pad FROM generate_series(1, 5000) i`);
      const opened: pg.Client[] = [];
      const pid = (c: pg.Client) => (c as unknown as { processID: number }).processID;
      let killed = false;
      await assert.rejects(
        exportTable(server, t, { workers: 3, opened }, async (source) => {
          for await (const chunk of source) {
            void chunk;
            if (!killed) {
              killed = true;
              await query(server, 'SELECT pg_terminate_backend($1)', [pid(opened[2] as pg.Client)]);
            }
            await sleep(1);
          }
        }),
      );
      assert.equal(killed, true);
      const pids = opened.map(pid);
      let left = -1;
      for (let i = 0; i < 50 && left !== 0; i++) {
        if (i > 0) await sleep(100);
        left = Number((await query<{ n: string }>(server, 'SELECT count(*) AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids]))[0]?.n);
      }
      assert.equal(left, 0, 'no connection of the export is left');
    });
  });
}

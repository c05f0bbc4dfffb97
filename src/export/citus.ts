/**
 * Parallel export of a Citus distributed table, shard by shard on the nodes that hold them.
 *
 * The coordinator's table is a shell with no rows; the rows are in shards, plain tables on the
 * worker nodes. Each node group holding shards gets a lane of connections (at least one, at most one
 * a shard); each shard is one part, `COPY (SELECT columns FROM shard) TO STDOUT`, run on its node,
 * and the parts are written strictly in order (ordered-copy.ts), the header once.
 *
 * Consistency. All connections to one node read in one snapshot (exported by the lane's first
 * connection, imported by the others), so every shard, and every node, is read as of one instant.
 * Citus gives no snapshot across nodes: a distributed transaction commits on each node with
 * two-phase commit, and a snapshot taken on one node may see it while one taken on another does
 * not. To get one cut across the nodes, the snapshots are taken while `pg_dist_transaction` is
 * locked in SHARE mode on every primary node (the approach of Citus's own citus_create_restore_point
 * and of citusdata/citus#6489): a distributed commit writes its record there and holds that lock
 * until it has committed on every node, so with the lock held none is half done. That needs a role
 * that may lock the table (a superuser, or one granted UPDATE on it) and every node reachable; when
 * not, each node has its own snapshot and the result says so (`consistentCut: false`).
 */
import type pg from 'pg';
import { quoteIdent } from '../pg/ident.js';
import { connectClient, type ConnectionTarget } from '../pg/connect.js';
import { beginSnapshotTransaction } from './parallel.js';
import type { RowTally } from './copy-out.js';
import type { RowShaper } from './copy-out-parser.js';
import { clusterLayout, connectionsPerLane, groupTargets, interleaveByGroup } from './citus-shards.js';
import { copyInOrder } from './ordered-copy.js';
import { exportCopySql, type ExportFormat } from './sql.js';

export interface ShardExportOptions {
  /** The distributed table, schema-qualified and quoted. */
  relation: string;
  columns: string[];
  format: ExportFormat;
  header: boolean;
  /** Connections in all (at least one a node holding shards), or 'auto' (this many, at least one a node). */
  workers: number;
  nodes: { kind: 'auto' } | { kind: 'urls'; urls: string[] };
  shaper: () => RowShaper;
  tally: RowTally;
  highWaterMark: number;
}

export interface ShardExportResult {
  rows: number;
  workers: number;
  shards: number;
  /** Servers read from. */
  nodes: number;
  /** The nodes' snapshots were taken with distributed commits held out: one cut across the table. */
  consistentCut: boolean;
}

/** Why the table cannot be read per shard from here: the caller exports it through the coordinator instead. */
export class ShardsUnreachable extends Error {}

/** Session settings that change how values are written out: the nodes' sessions take the coordinator session's. */
const OUTPUT_SETTINGS = ['TimeZone', 'DateStyle', 'IntervalStyle', 'extra_float_digits', 'bytea_output'];

async function outputSettings(client: pg.Client): Promise<string[]> {
  const r = await client.query<{ v: string[] }>(`SELECT ARRAY[${OUTPUT_SETTINGS.map((s) => `current_setting('${s}')`).join(', ')}] AS v`);
  return r.rows[0]?.v ?? [];
}

/** For the transaction only (SET LOCAL): nothing stays on the node's session, pooled or not. */
async function applySettings(client: pg.Client, values: string[]): Promise<void> {
  await client.query(`SELECT ${OUTPUT_SETTINGS.map((s, i) => `set_config('${s}', $${i + 1}, true)`).join(', ')}`, values);
}

/**
 * Export over connections to the nodes; `coordinator` is the caller's connection (used to plan and to
 * lock, and closed by the caller). Throws ShardsUnreachable, before any byte is written, when a shard
 * has no placement or its node cannot be reached.
 */
export async function exportShards(
  coordinator: pg.Client,
  target: ConnectionTarget,
  o: ShardExportOptions,
  consume: (chunks: AsyncIterable<Buffer>) => Promise<void>,
): Promise<ShardExportResult> {
  const layout = await clusterLayout(coordinator, o.relation);
  if (layout.shards.length + layout.unplaced === 0) throw new ShardsUnreachable('the table has no shards');
  if (layout.unplaced > 0) throw new ShardsUnreachable(`${layout.unplaced} shards have no active placement on a primary node`);
  const reach = await groupTargets(layout, target, o.nodes);
  const shards = interleaveByGroup(layout.shards);
  const groups = [...new Set(shards.map((s) => s.group))].sort((a, b) => a - b);
  const missing = groups.find((g) => !reach.has(g));
  if (missing !== undefined) {
    const n = layout.groups.get(missing);
    throw new ShardsUnreachable(`--nodes does not name the node holding shards of group ${missing}${n ? ` (${n.host}:${n.port})` : ''}`);
  }
  const settings = await outputSettings(coordinator);
  const perLane = connectionsPerLane(
    o.workers,
    groups.map((g) => shards.filter((s) => s.group === g).length),
  );
  const lanes: pg.Client[][] = groups.map(() => []);
  const lockers: pg.Client[] = [];
  const closeAll = () => Promise.all(lanes.flat().map((c) => c.end().catch(() => undefined))).then(() => undefined);
  try {
    // The first connection of every lane; a node that cannot be reached means: through the coordinator.
    try {
      await Promise.all(
        groups.map(async (g, i) => {
          const c = await connectClient(reach.get(g) as ConnectionTarget, 'dataio export', { retry: false });
          (lanes[i] as pg.Client[]).push(c);
        }),
      );
    } catch (err) {
      throw new ShardsUnreachable(err instanceof Error ? err.message : String(err));
    }
    const consistentCut = await holdDistributedCommits(coordinator, layout.localGroup, [...layout.groups.keys()], reach, lockers);
    const snapshots = await Promise.all(
      lanes.map(async (l) => {
        const lead = l[0] as pg.Client;
        await beginSnapshotTransaction(lead);
        const r = await lead.query<{ s: string }>('SELECT pg_export_snapshot() AS s');
        await applySettings(lead, settings);
        return (r.rows[0] as { s: string }).s;
      }),
    );
    await releaseDistributedCommits(coordinator, lockers);
    await Promise.all(
      groups.flatMap((g, i) =>
        Array.from({ length: (perLane[i] ?? 1) - 1 }, async () => {
          const c = await connectClient(reach.get(g) as ConnectionTarget, 'dataio export');
          (lanes[i] as pg.Client[]).push(c);
          await beginSnapshotTransaction(c, snapshots[i]);
          await applySettings(c, settings);
        }),
      ),
    );
    const columns = o.columns.map(quoteIdent).join(', ');
    const parts = shards.map((s, k) => ({
      sql: exportCopySql({ kind: 'query', sql: `SELECT ${columns} FROM ${s.relation}` }, o.format, o.header && k === 0),
      lane: groups.indexOf(s.group),
    }));
    const rows = await copyInOrder(lanes, parts, o, consume, closeAll);
    return { rows, workers: lanes.flat().length, shards: shards.length, nodes: groups.length, consistentCut };
  } finally {
    await releaseDistributedCommits(coordinator, lockers);
    await closeAll();
  }
}

const LOCK = 'LOCK TABLE pg_catalog.pg_dist_transaction IN SHARE MODE';

/**
 * Lock pg_dist_transaction on every primary node (the coordinator's connection for our own group,
 * a new connection for the others, kept in `lockers`); true when every lock is held. A role that may
 * not lock it, a node that cannot be reached, or a wait of more than 2 s (while we wait, the node's
 * distributed commits queue behind us: the wait is kept short): nothing held, false.
 */
async function holdDistributedCommits(
  coordinator: pg.Client,
  localGroup: number,
  groups: number[],
  reach: Map<number, ConnectionTarget>,
  lockers: pg.Client[],
): Promise<boolean> {
  if (groups.some((g) => !reach.has(g))) return false;
  try {
    await coordinator.query('BEGIN');
    await coordinator.query("SET LOCAL lock_timeout = '2s'");
    await coordinator.query(LOCK);
    await Promise.all(
      groups
        .filter((g) => g !== localGroup)
        .map(async (g) => {
          const c = await connectClient(reach.get(g) as ConnectionTarget, 'dataio export', { retry: false });
          lockers.push(c);
          await c.query('BEGIN');
          await c.query("SET LOCAL lock_timeout = '2s'");
          await c.query(LOCK);
        }),
    );
    return true;
  } catch {
    // Not allowed (42501), a node not answering, or commits that would not let go: no cut, no failure.
    await releaseDistributedCommits(coordinator, lockers);
    return false;
  }
}

async function releaseDistributedCommits(coordinator: pg.Client, lockers: pg.Client[]): Promise<void> {
  await coordinator.query('ROLLBACK').catch(() => undefined);
  await Promise.all(lockers.splice(0).map((c) => c.end().catch(() => undefined)));
}

/**
 * Where each chunk's INSERT goes. On a plain server (or behind a pooler): the connections of one
 * pool. On Citus, where dataio.chunks is distributed by seq: straight into the chunk's shard on the
 * node holding it (reached with the coordinator's credentials), a plain local INSERT there. Through
 * the coordinator every chunk took twice as long (measured: 64 MB in 4 MB chunks, 4.7 s against
 * 2.3 s): Citus passes the bytes on once more, as text. The shard of a seq is found as Citus finds it,
 * by PostgreSQL's hashint4 within the shards' hash ranges. Should a shard move meanwhile, the final
 * count through the distributed table (put.ts complete()) misses its chunks and the upload stays
 * resumable. If any node cannot be reached, every chunk goes through the coordinator.
 */
import type pg from 'pg';
import { atHostPort, connectClient, type ConnectionTarget } from '../pg/connect.js';
import { ClientPool } from './pool.js';
import { CHUNKS } from './schema.js';

export interface ChunkRoutes {
  /** Run `fn` on a connection fit for chunk `seq`, with the table to insert it into there. */
  use<T>(seq: number, fn: (client: pg.Client, table: string) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** How long a node may take to accept a connection before chunks go through the coordinator instead. */
const PROBE_MS = 3000;

const rot = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** PostgreSQL's hashint4 (hash_uint32, Bob Jenkins' final mix), as Citus hashes an integer distribution column. */
export function hashint4(k: number): number {
  let a = (0x9e3779b9 + 4 + 3923095) >>> 0;
  let b = a;
  let c = a;
  a = (a + (k >>> 0)) >>> 0;
  c = ((c ^ b) - rot(b, 14)) >>> 0;
  a = ((a ^ c) - rot(c, 11)) >>> 0;
  b = ((b ^ a) - rot(a, 25)) >>> 0;
  c = ((c ^ b) - rot(b, 16)) >>> 0;
  a = ((a ^ c) - rot(c, 4)) >>> 0;
  b = ((b ^ a) - rot(a, 14)) >>> 0;
  c = ((c ^ b) - rot(b, 24)) >>> 0;
  return c | 0;
}

interface Shard {
  min: number;
  max: number;
  node: string;
  /** The shard's own table on that node. */
  table: string;
}

/**
 * Each shard's hash range and the node holding it (`here` when that is the node we are connected to);
 * undefined when chunks are not hash-distributed, or a shard has several placements (replicated
 * shards: only Citus may write those, to every copy at once).
 */
async function shardMap(client: pg.Client): Promise<{ shards: Shard[]; nodes: Map<string, { host: string; port: number; here: boolean }> } | undefined> {
  const r = await client.query<{ shardid: string; min: string; max: string; host: string; port: number; here: boolean; copies: number }>(
    `SELECT s.shardid, s.shardminvalue AS min, s.shardmaxvalue AS max, n.nodename AS host, n.nodeport AS port,
            n.groupid = (SELECT groupid FROM pg_dist_local_group) AS here, count(*) OVER (PARTITION BY s.shardid)::int AS copies
       FROM pg_dist_shard s JOIN pg_dist_placement p ON p.shardid = s.shardid JOIN pg_dist_node n ON n.groupid = p.groupid
      WHERE s.logicalrelid = $1::regclass AND n.isactive AND n.noderole = 'primary'
        AND (SELECT partmethod FROM pg_dist_partition WHERE logicalrelid = $1::regclass) = 'h'`,
    [CHUNKS],
  );
  if (r.rows.length === 0 || r.rows.some((x) => x.copies !== 1)) return undefined;
  const nodes = new Map<string, { host: string; port: number; here: boolean }>();
  const shards = r.rows.map((x) => {
    const key = `${x.host}:${x.port}`;
    nodes.set(key, { host: x.host, port: x.port, here: x.here });
    // Citus names a shard's table after its table and shard id.
    return { min: Number(x.min), max: Number(x.max), node: key, table: `${CHUNKS}_${x.shardid}` };
  });
  return { shards, nodes };
}

/** One pool for everything. */
export function singleRoute(pool: ClientPool): ChunkRoutes {
  return { use: (_seq, fn) => pool.use((c) => fn(c, CHUNKS)), close: () => pool.close() };
}

/**
 * The routes for a doc-put: per node on Citus (each node's pool up to `workers` connections; the
 * caller bounds the chunks in flight), else one pool. `citus` says whether the server has Citus.
 */
export async function chunkRoutes(client: pg.Client, target: ConnectionTarget, workers: number, citus: boolean, applicationName: string): Promise<ChunkRoutes> {
  const direct = citus ? await shardMap(client) : undefined;
  if (direct === undefined) return singleRoute(new ClientPool(target, workers, applicationName));
  const targets = new Map<string, ConnectionTarget>();
  for (const [key, n] of direct.nodes) targets.set(key, n.here ? target : atHostPort(target, n.host, n.port));
  // Every node must answer (within PROBE_MS), or none is used directly: a cluster whose node names
  // mean nothing here (container names, a private network) works through the coordinator as before.
  const probe = (t: ConnectionTarget) => ({ ...t, clientConfig: { ...t.clientConfig, connectionTimeoutMillis: PROBE_MS } });
  const reached = await Promise.all([...targets.values()].map((t) => connectClient(probe(t), applicationName, { retry: false }).then((c) => c.end().then(() => true), () => false)));
  if (reached.includes(false)) return singleRoute(new ClientPool(target, workers, applicationName));
  const pools = new Map([...targets].map(([key, t]) => [key, new ClientPool(t, workers, applicationName)]));
  return {
    use: (seq, fn) => {
      const h = hashint4(seq);
      const shard = direct.shards.find((s) => h >= s.min && h <= s.max);
      const pool = shard === undefined ? undefined : pools.get(shard.node);
      if (shard === undefined || pool === undefined) return singleRoute(pools.values().next().value as ClientPool).use(seq, fn);
      return pool.use((c) => fn(c, shard.table));
    },
    close: async () => {
      await Promise.all([...pools.values()].map((p) => p.close()));
    },
  };
}

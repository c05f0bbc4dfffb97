/**
 * Where the shards of a Citus distributed table are: one active placement a shard (pg_dist_shard,
 * pg_dist_placement, pg_dist_node), the node group holding it, and how to reach each node group
 * (`--nodes`: every node pg_dist_node lists, or the URLs named, matched to groups by asking each
 * node its own group in pg_dist_local_group).
 */
import type pg from 'pg';
import { atHostPort, connectClient, targetOfUrl, type ConnectionTarget } from '../pg/connect.js';

export interface ShardPlacement {
  shardId: string;
  /** The shard's relation on its node, schema-qualified and quoted (Citus's shard_name). */
  relation: string;
  group: number;
}

export interface ClusterLayout {
  /** Every shard with an active placement, by shard id. */
  shards: ShardPlacement[];
  /** Shards without an active placement on an active primary node (then the table cannot be read per shard). */
  unplaced: number;
  /** Active primary node groups, with how to reach each as pg_dist_node lists it. */
  groups: Map<number, { host: string; port: number }>;
  /** The group of the node we are connected to. */
  localGroup: number;
}

export async function clusterLayout(client: pg.Client, relation: string): Promise<ClusterLayout> {
  const shards = await client.query<{ shard_id: string; relation: string; group: number | null }>(
    `SELECT s.shardid::text AS shard_id, shard_name(s.logicalrelid, s.shardid, false) AS relation,
            (SELECT p.groupid FROM pg_dist_placement p JOIN pg_dist_node n ON n.groupid = p.groupid
              WHERE p.shardid = s.shardid AND p.shardstate = 1 AND n.isactive AND n.noderole = 'primary'
              ORDER BY p.placementid LIMIT 1) AS "group"
       FROM pg_dist_shard s WHERE s.logicalrelid = $1::regclass ORDER BY s.shardid`,
    [relation],
  );
  const nodes = await client.query<{ group: number; host: string; port: number; local: boolean }>(
    `SELECT groupid AS "group", nodename AS host, nodeport AS port, groupid = (SELECT groupid FROM pg_dist_local_group) AS local
       FROM pg_dist_node WHERE isactive AND noderole = 'primary' ORDER BY groupid`,
  );
  const placed = shards.rows.filter((s) => s.group !== null);
  return {
    shards: placed.map((s) => ({ shardId: s.shard_id, relation: s.relation, group: s.group as number })),
    unplaced: shards.rows.length - placed.length,
    groups: new Map(nodes.rows.map((n) => [n.group, { host: n.host, port: n.port }])),
    localGroup: nodes.rows.find((n) => n.local)?.group ?? 0,
  };
}

/**
 * How to reach each node group: `auto`, every group at its pg_dist_node address with our credentials
 * (our own group at the target we are connected to); with URLs, the groups those nodes say they are
 * (and ours). A group missing from the map cannot be reached.
 */
export async function groupTargets(layout: ClusterLayout, target: ConnectionTarget, nodes: { kind: 'auto' } | { kind: 'urls'; urls: string[] }): Promise<Map<number, ConnectionTarget>> {
  const out = new Map<number, ConnectionTarget>();
  if (nodes.kind === 'auto') {
    for (const [group, n] of layout.groups) out.set(group, group === layout.localGroup ? target : atHostPort(target, n.host, n.port));
    return out;
  }
  out.set(layout.localGroup, target);
  for (const url of nodes.urls) {
    const t = targetOfUrl(url);
    const c = await connectClient(t, 'dataio export');
    try {
      const r = await c.query<{ group: number }>('SELECT groupid AS "group" FROM pg_dist_local_group');
      const group = r.rows[0]?.group;
      if (group !== undefined && !out.has(group)) out.set(group, t);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  return out;
}

/**
 * The shards in the order they are exported: round robin over the node groups (the first shard of
 * each group, then the second…), so that the parts in the write window spread over every node.
 */
export function interleaveByGroup(shards: ShardPlacement[]): ShardPlacement[] {
  const byGroup = new Map<number, ShardPlacement[]>();
  for (const s of shards) byGroup.set(s.group, [...(byGroup.get(s.group) ?? []), s]);
  const lists = [...byGroup.entries()].sort(([a], [b]) => a - b).map(([, l]) => l);
  const out: ShardPlacement[] = [];
  for (let i = 0; out.length < shards.length; i++) for (const l of lists) if (i < l.length) out.push(l[i] as ShardPlacement);
  return out;
}

/** `workers` connections over `lanes` node groups holding `shardsPerLane` shards: at least one a group, at most one a shard. */
export function connectionsPerLane(workers: number, shardsPerLane: number[]): number[] {
  const k = shardsPerLane.length;
  return shardsPerLane.map((shards, i) => Math.min(shards, Math.max(1, Math.floor(workers / k) + (i < workers % k ? 1 : 0))));
}

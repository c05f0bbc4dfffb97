/**
 * What an upsert's move did to the table: rows inserted (keys it lacked) and rows updated (keys it
 * had, `--on-conflict update`), from the backend's statistics counters for the table
 * (pg_stat_get_xact_tuples_inserted / _updated; no scan), summed over a partitioned table's
 * partitions. Those counters hold what the session did since its statistics were last sent (which
 * happens only between transactions), so the counts are read just before and just after the move,
 * inside its transaction, and subtracted. Not asked where they would not tell: a Citus table (its
 * rows are counted on the workers' shards); nor by the callers for `--on-error skip`'s move in parts,
 * whose rolled-back attempts stay counted.
 */
import type pg from 'pg';
import type { TableInfo } from '../../pg/catalog.js';

export interface UpsertCounts {
  inserted: number;
  updated: number;
}

/** The table's counters now, or undefined when the server keeps none (track_counts off). */
async function counters(client: pg.Client, table: TableInfo): Promise<UpsertCounts | undefined> {
  const r = await client.query<{ on: boolean; inserted: string; updated: string }>(
    // The table and what inherits from it (its partitions: pg_inherits, not pg_partition_tree, which
    // PostgreSQL 11 lacks and which lists nothing for a plain table).
    `WITH RECURSIVE tree(relid) AS (SELECT $1::oid UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.relid)
     SELECT current_setting('track_counts')::bool AS on,
            coalesce(sum(pg_stat_get_xact_tuples_inserted(relid)), 0)::bigint AS inserted,
            coalesce(sum(pg_stat_get_xact_tuples_updated(relid)), 0)::bigint AS updated
       FROM tree`,
    [table.oid],
  );
  const row = r.rows[0];
  if (row === undefined || !row.on) return undefined;
  return { inserted: Number(row.inserted), updated: Number(row.updated) };
}

/**
 * Run `move` (inside a transaction already begun); for an upsert into a table the counters tell of
 * (not a Citus table: see above), resolves to what it did, else to undefined.
 */
export async function countedMove(client: pg.Client, table: TableInfo, upsert: boolean, move: () => Promise<unknown>): Promise<UpsertCounts | undefined> {
  const before = upsert && table.citus === undefined ? await counters(client, table) : undefined;
  await move();
  const after = before !== undefined ? await counters(client, table) : undefined;
  return before !== undefined && after !== undefined ? { inserted: after.inserted - before.inserted, updated: after.updated - before.updated } : undefined;
}

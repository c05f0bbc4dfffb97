/**
 * What is exported: a table looked up in the catalog (so a wrong name is one clear line before any
 * COPY runs), or a query; and the planner's estimate of its rows, for % in progress.
 */
import type pg from 'pg';
import { DataioError } from '../errors.js';
import { lookupTable, type CitusKind } from '../pg/catalog.js';
import { displayName, parseTableName, qualifiedName } from '../pg/ident.js';
import { estimateSql, normalizeQuery, type ExportSource } from './sql.js';

export interface ResolvedSource {
  source: ExportSource;
  /** For messages: `public.t`, or "the query". */
  display: string;
  /** Set when the table can be cut into ctid ranges (a heap relation, PostgreSQL 14+ for TID range scans). */
  rangeable: boolean;
  /** Why not, for the warning when --workers is asked for. */
  notRangeable?: string;
  /**
   * A table Citus manages (its coordinator's relation is a shell without rows): how, whether its
   * rows are in shards spread over the nodes (hash, append, range: read per shard), and its columns.
   */
  citus?: { kind: CitusKind; sharded: boolean; columns: string[] };
}

interface RelationRow {
  schema: string;
  name: string;
  kind: string;
  am: string | null;
  version: number;
  citus: boolean;
}

export async function resolveSource(client: pg.Client, table: string | undefined, query: string | undefined): Promise<ResolvedSource> {
  if (query !== undefined) return { source: { kind: 'query', sql: normalizeQuery(query) }, display: 'the query', rangeable: false };
  const name = parseTableName(table as string);
  const r = await client.query<RelationRow>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind, am.amname AS am,
            current_setting('server_version_num')::int AS version,
            EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_am am ON am.oid = c.relam
      WHERE c.oid = to_regclass($1)`,
    [qualifiedName(name)],
  );
  const rel = r.rows[0];
  const display = displayName(name);
  if (rel === undefined) {
    throw new DataioError('TABLE_NOT_FOUND', `table ${display} does not exist`, { hint: 'check the name (schema.table), or use --query' });
  }
  const sql = qualifiedName({ schema: rel.schema, name: rel.name });
  let notRangeable: string | undefined;
  if (rel.version < 140000) notRangeable = 'the server is older than PostgreSQL 14 (no TID range scans)';
  else if ((rel.kind !== 'r' && rel.kind !== 'm') || rel.am !== 'heap') notRangeable = `${display} is not a heap table`;
  const info = rel.citus ? await lookupTable(client, { schema: rel.schema, name: rel.name }, true) : undefined;
  if (info?.citus !== undefined) {
    // Its pages are empty: ctid ranges would cut nothing. Distributed tables are read per shard (citus.ts).
    notRangeable = `${display} is a Citus ${info.citus.kind} table`;
  }
  // `COPY t TO` on a Citus table is Citus's own code path (a table without shards gives no header,
  // a header counts as a row): `COPY (SELECT …) TO`, psql's `\copy (SELECT …) TO`, is the reference.
  const plain = rel.kind === 'r' && info?.citus === undefined;
  const resolved: ResolvedSource = { source: { kind: 'table', sql, plain }, display, rangeable: notRangeable === undefined };
  if (info?.citus !== undefined) {
    const sharded = info.citus.kind === 'distributed' || info.citus.method === 'a' || info.citus.method === 'r';
    resolved.citus = { kind: info.citus.kind, sharded, columns: info.columns.map((c) => c.name) };
  }
  if (notRangeable !== undefined) resolved.notRangeable = notRangeable;
  return resolved;
}

/** The planner's row estimate, or undefined when it cannot give one (a bad query fails in the COPY instead). */
export async function estimateRows(client: pg.Client, source: ExportSource): Promise<number | undefined> {
  try {
    const r = await client.query<{ 'QUERY PLAN': unknown }>(estimateSql(source));
    const plan = (r.rows[0]?.['QUERY PLAN'] as { Plan?: { 'Plan Rows'?: unknown } }[] | undefined)?.[0]?.Plan;
    const rows = plan?.['Plan Rows'];
    return typeof rows === 'number' && rows >= 0 ? rows : undefined;
  } catch {
    return undefined;
  }
}

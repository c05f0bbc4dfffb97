/**
 * Looking tables and columns up in the catalog.
 */
import type pg from 'pg';
import { displayName, qualifiedName, type TableName } from './ident.js';

export interface ColumnInfo {
  name: string;
  type: string;
}

/** How Citus keeps a table: spread over the workers by a column, copied to every node, or on the coordinator alone. */
export type CitusKind = 'distributed' | 'reference' | 'local';

export interface TableInfo {
  oid: number;
  /** Schema-qualified, quoted: safe to put into SQL. */
  sql: string;
  display: string;
  /** The schema and the name as the catalog has them. */
  schema: string;
  name: string;
  /** pg_class.relkind: 'r' table, 'p' partitioned table, 'f' foreign table, 'v' view… */
  kind: string;
  columns: ColumnInfo[];
  /** The primary key's columns, in key order ([] when there is none; undefined: not looked up). */
  primaryKey?: string[] | undefined;
  /**
   * On a Citus cluster, a table Citus manages: how, (distributed) by which column, and
   * pg_dist_partition.partmethod ('h' hash, 'a' append, 'r' range, 'n' none).
   */
  citus?: { kind: CitusKind; column: string | null; method: string } | undefined;
}

type LookupRow = { oid: string; schema: string; name: string; kind: string; columns: ColumnInfo[]; pk: string[] | null; citus?: { method: string; repmodel: string; colocated: boolean; column: string | null } | null };

/**
 * The statement that looks a table up (its schema, kind, columns and primary key, and with `citus`,
 * how Citus keeps it); `name` is SQL for the qualified name as text: `$1`, or a quoted literal where
 * the lookup rides in one message with other statements (serverFacts). Without `primaryKey` (only an
 * upsert needs it) the key is not looked up: on a new backend that part alone took 1.8 ms of 9.7.
 */
export function tableLookupSql(name: string, citus: boolean, primaryKey = true): string {
  const citusSql = citus
    ? `, (SELECT json_build_object('method', p.partmethod, 'repmodel', p.repmodel, 'colocated', p.colocationid <> 0,
                                  'column', CASE WHEN p.partmethod = 'h' THEN column_to_column_name(p.logicalrelid, p.partkey) END)
           FROM pg_dist_partition p WHERE p.logicalrelid = c.oid) AS citus`
    : '';
  return `SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
            coalesce((SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
                        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns,
            ${
              primaryKey
                ? `coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                        FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                       WHERE i.indrelid = c.oid AND i.indisprimary), '{}')`
                : 'NULL::text[]'
            } AS pk${citusSql}
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = to_regclass(${name})`;
}

/** The table `t` as tableLookupSql's result tells it (undefined: no row, there is no such table). */
export function tableFromLookup(t: TableName, rows: readonly unknown[]): TableInfo | undefined {
  const row = rows[0] as LookupRow | undefined;
  if (row === undefined) return undefined;
  const full: TableName = { schema: row.schema, name: row.name };
  const info: TableInfo = {
    oid: Number(row.oid),
    sql: qualifiedName(full),
    display: displayName(t),
    schema: row.schema,
    name: row.name,
    kind: row.kind,
    columns: row.columns,
    ...(row.pk !== null ? { primaryKey: row.pk } : {}),
  };
  if (row.citus) {
    // A table without a shard key in a colocation group (schema-based sharding) lives on one worker: distributed too.
    const c = row.citus;
    const kind: CitusKind = c.method === 'h' || (c.repmodel !== 't' && c.colocated) ? 'distributed' : c.repmodel === 't' ? 'reference' : 'local';
    info.citus = { kind, column: row.citus.column, method: c.method };
  }
  return info;
}

/**
 * The table, its schema, kind, columns and primary key (and with `citus`, how Citus keeps it), in one
 * round trip: it is on the path to an import's first batch.
 */
export async function lookupTable(client: pg.Client, t: TableName, citus = false): Promise<TableInfo | undefined> {
  return tableFromLookup(t, (await client.query(tableLookupSql('$1', citus), [qualifiedName(t)])).rows);
}

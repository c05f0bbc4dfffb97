/**
 * Looking tables and columns up in the catalog.
 */
import type pg from 'pg';
import { displayName, qualifiedName, type TableName } from './ident.js';

export interface ColumnInfo {
  name: string;
  type: string;
}

export interface TableInfo {
  oid: number;
  /** Schema-qualified, quoted: safe to put into SQL. */
  sql: string;
  display: string;
  /** pg_class.relkind: 'r' table, 'p' partitioned table, 'f' foreign table, 'v' view… */
  kind: string;
  columns: ColumnInfo[];
}

/** The table, its schema, kind and columns, in one round trip (it is on the path to an import's first batch). */
export async function lookupTable(client: pg.Client, t: TableName): Promise<TableInfo | undefined> {
  const r = await client.query<{ oid: string; schema: string; kind: string; columns: ColumnInfo[] }>(
    `SELECT c.oid, n.nspname AS schema, c.relkind AS kind,
            coalesce((SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
                        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = to_regclass($1)`,
    [qualifiedName(t)],
  );
  const row = r.rows[0];
  if (row === undefined) return undefined;
  const full: TableName = { schema: row.schema, name: t.name };
  return { oid: Number(row.oid), sql: qualifiedName(full), display: displayName(t), kind: row.kind, columns: row.columns };
}

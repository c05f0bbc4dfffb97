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

export async function lookupTable(client: pg.Client, t: TableName): Promise<TableInfo | undefined> {
  const sql = qualifiedName(t);
  const r = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [sql]);
  const oid = r.rows[0]?.oid;
  if (oid === null || oid === undefined) return undefined;
  const cols = await client.query<{ name: string; type: string }>(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type
       FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [oid],
  );
  const ns = await client.query<{ schema: string; kind: string }>(
    'SELECT n.nspname AS schema, c.relkind AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1',
    [oid],
  );
  const schema = ns.rows[0]?.schema ?? t.schema;
  const full: TableName = schema === undefined ? t : { schema, name: t.name };
  return { oid: Number(oid), sql: qualifiedName(full), display: displayName(t), kind: ns.rows[0]?.kind ?? 'r', columns: cols.rows };
}

/**
 * The import's table: found, checked against what the command asks (--create wants a new one, a
 * resumed import wants the one it loaded), or made from the columns the input suggests.
 */
import type pg from 'pg';
import { DataioError } from '../../errors.js';
import { lookupTable, type TableInfo } from '../../pg/catalog.js';
import { displayName, qualifiedName, quoteIdent, type TableName } from '../../pg/ident.js';
import { mapQueryError } from '../../pg/pg-errors.js';

export interface ColumnDef {
  name: string;
  type: string;
}

export function createTableSql(t: TableName, columns: readonly ColumnDef[], unlogged = false): string {
  return `CREATE ${unlogged ? 'UNLOGGED ' : ''}TABLE ${qualifiedName(t)} (${columns.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ')})`;
}

/** Refuse columns a table cannot have: unnamed, named twice, none at all. */
export function checkColumns(columns: readonly ColumnDef[]): void {
  const names = columns.map((c) => c.name);
  names.forEach((n, i) => {
    if (n === '') throw new DataioError('INPUT_FORMAT', `input column ${i + 1} has no name`, { hint: 'name it, or pass --columns' });
  });
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new DataioError('INPUT_FORMAT', `the input names the column "${dup}" twice`, { hint: 'rename one, or pass --columns' });
  if (names.length === 0) throw new DataioError('INPUT_FORMAT', 'the input has no columns to create a table from');
}

/** Make the table (in the caller's transaction, if one is open) and look it up. */
export async function createTable(client: pg.Client, t: TableName, columns: readonly ColumnDef[], citus: boolean): Promise<TableInfo> {
  checkColumns(columns);
  try {
    await client.query(createTableSql(t, columns));
  } catch (err) {
    throw mapQueryError(err, { action: `create table ${displayName(t)}` });
  }
  const table = await lookupTable(client, t, citus);
  if (!table) throw new DataioError('INTERNAL', `table ${displayName(t)} vanished right after it was created`);
  return table;
}

/**
 * The table as it stands, checked against the command: without --create it must exist; with --create
 * it must not (unless a resumed import made it: then it must still be there). Undefined: --create is
 * to make it.
 */
export async function findTable(
  client: pg.Client,
  t: TableName,
  o: { create: boolean; resuming: boolean; ours: boolean; citus: boolean },
  /** The table as a lookup just made found it (serverFacts): not looked up again. */
  known?: { info: TableInfo | undefined },
): Promise<TableInfo | undefined> {
  const existing = known !== undefined ? known.info : await lookupTable(client, t, o.citus);
  if (o.resuming && !existing) {
    throw new DataioError('IMPORT_STATE', `table ${displayName(t)} of the resumable import is gone, with the rows loaded into it`, {
      hint: 'start over with a new --import-id',
    });
  }
  if (!o.create || (existing && o.ours)) {
    if (!existing) {
      throw new DataioError('TABLE_NOT_FOUND', `table ${displayName(t)} does not exist`, {
        hint: 'check the name (schema.table), or pass --create to make it from the input',
      });
    }
    return existing;
  }
  if (existing) {
    throw new DataioError('TABLE_EXISTS', `table ${existing.display} already exists`, {
      hint: 'drop --create to load into it, or choose another --table',
    });
  }
  return undefined;
}

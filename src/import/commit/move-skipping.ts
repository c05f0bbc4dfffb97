/**
 * --on-error skip when rows reach the table through a staging table: the staging table's COPY already
 * refused bad values (each batch, naming the line), but what only the table can judge (a key it has
 * already, a foreign key, a trigger, a partition with no place for the row) shows when the rows are
 * moved. So, in the final transaction: the whole move is tried once; when a row fails it, the move is
 * made again batch by batch, each in a savepoint, and a failing batch is halved (load/skip.ts) until
 * the refused rows stand alone. Those become rejects, written from the values staged for them (the
 * record's own bytes are not kept), and named by the batch they came in.
 *
 * Only failures cost: a clean move is one statement. Savepoints are many only when rows fail.
 */
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { DataioError } from '../../errors.js';
import { isPgError } from '../../pg/pg-errors.js';
import { quoteIdent } from '../../pg/ident.js';
import { rejectOf, type Reject, type RejectsAs } from '../load/rejects.js';
import { loadSkipping, type RowFailure } from '../load/skip.js';
import { moveSql, POSITION_COLUMNS, type MoveSpec } from './move.js';

/** A batch's position in the staging table: its input file and byte offset there, in one bigint (file × 2^40 + offset). */
export function batchPosition(file: number, offset: number): bigint {
  return (BigInt(file) << 40n) + BigInt(offset);
}

export function positionOf(p: bigint): { file: number; offset: number } {
  return { file: Number(p >> 40n), offset: Number(p & ((1n << 40n) - 1n)) };
}

export interface MoveSkipping {
  spec: MoveSpec;
  /** How a refused row is written into the rejects file: the input's COPY options, or JSON. */
  serialize: RejectsAs;
  /** Where a batch (by its staging position) begins in the input, for the rejects' log. */
  locate(position: bigint): { file?: string | undefined; line: number; offset: number };
  /** Rows the move may still refuse before the import fails (--max-errors less the rejects so far). */
  allowed(): number;
}

const SAVEPOINT = 'dataio_move';

function rowFailure(err: unknown): RowFailure | undefined {
  if (!isPgError(err)) return undefined;
  const code = err.code ?? '';
  return code.startsWith('22') || code.startsWith('23') ? { serverLine: undefined } : undefined;
}

async function inSavepoint(client: pg.Client, sql: string, params: unknown[] = []): Promise<number> {
  await client.query(`SAVEPOINT ${SAVEPOINT}`);
  try {
    const r = await client.query(sql, params);
    await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    return r.rowCount ?? 0;
  } catch (err) {
    await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}; RELEASE SAVEPOINT ${SAVEPOINT}`);
    throw err;
  }
}

/**
 * Move the staged rows inside the caller's open transaction, setting aside the rows the table refuses.
 * Resolves to the rows moved and the rejects, in input order.
 */
/** A row refused by the move, with the staging position of its batch. */
export type MovedReject = Reject & { position: bigint };

export async function moveSkipping(client: pg.Client, m: MoveSkipping): Promise<{ moved: number; rejects: MovedReject[] }> {
  const whole = moveSql(m.spec);
  try {
    return { moved: await inSavepoint(client, whole), rejects: [] };
  } catch (err) {
    if (rowFailure(err) === undefined) throw err;
  }
  const [batchCol, rowCol] = POSITION_COLUMNS;
  const positions = await client.query<{ b: string }>(`SELECT DISTINCT ${batchCol} AS b FROM ${m.spec.staging} ORDER BY 1`);
  let moved = 0;
  const rejects: MovedReject[] = [];
  for (const { b } of positions.rows) {
    const rows = await client.query<{ r: string }>(`SELECT ${rowCol} AS r FROM ${m.spec.staging} WHERE ${batchCol} = $1 ORDER BY 1`, [b]);
    const ids = rows.rows.map((x) => x.r);
    const set = { count: ids.length, copyInput: () => [], recordAtLine: () => undefined };
    const range = (a: number, z: number) => `${batchCol} = ${b} AND ${rowCol} BETWEEN ${ids[a]} AND ${ids[z - 1]}`;
    const r = await loadSkipping(set, (a, z) => inSavepoint(client, moveSql({ ...m.spec, where: range(a, z) })), rowFailure);
    moved += r.rows;
    for (const { index, err } of r.rejected) {
      const at = m.locate(BigInt(b));
      const raw = await serialized(client, m, `${batchCol} = ${b} AND ${rowCol} = ${ids[index]}`);
      rejects.push({ ...rejectOf(err, { line: at.line, offset: at.offset, raw }), ...(at.file !== undefined ? { file: at.file } : {}), moved: true, position: BigInt(b) });
      if (rejects.length > m.allowed()) {
        const last = rejects[rejects.length - 1] as MovedReject;
        throw new DataioError('DATA_ERROR', `import into ${m.spec.target} failed: more rows rejected than --max-errors allows; the last when moving the batch at ${at.file !== undefined ? `${at.file}, line` : 'input line'} ${at.line}: ${last.message}`, {
          hint: 'raise --max-errors, or fix the input',
          line: at.line,
        });
      }
    }
  }
  return { moved, rejects };
}

/** A staged row as a record of the input's format: COPY it out with the input's options, or as JSON. */
async function serialized(client: pg.Client, m: MoveSkipping, where: string): Promise<Buffer> {
  const cols = m.spec.columns.map(quoteIdent).join(', ');
  if (m.serialize.kind === 'json') {
    const r = await client.query<{ j: string }>(`SELECT row_to_json(x)::text AS j FROM (SELECT ${cols} FROM ${m.spec.staging} WHERE ${where}) x`);
    return Buffer.from(r.rows[0]?.j ?? '{}');
  }
  const out: Buffer[] = [];
  const stream = client.query(copyTo(`COPY (SELECT ${cols} FROM ${m.spec.staging} WHERE ${where}) TO STDOUT (${m.serialize.options})`));
  for await (const c of stream as AsyncIterable<Buffer>) out.push(c);
  return Buffer.concat(out);
}

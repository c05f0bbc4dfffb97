/**
 * The ledger of resumable imports (--import-id), in the dataio schema. Each batch commits in one
 * transaction with its ledger row (and its rejects), so after any crash the ledger says exactly which
 * batches are in: a rerun loads the others, and nothing twice. Batches are identified by their byte
 * offset in the input (the cut is deterministic for a given input and batch size, which is kept in
 * the import's row) and checked by length and CRC-32, so a changed input is refused.
 */
import { crc32 } from 'node:zlib';
import type pg from 'pg';
import { DataioError } from '../errors.js';
import { ensureDataioObjects, LOCK_SPACE } from '../pg/dataio-schema.js';
import type { Reject } from './rejects.js';

const IMPORTS = 'dataio.imports';
const BATCHES = 'dataio.import_batches';
const REJECTS = 'dataio.import_rejects';
/** Advisory locks of running resumable imports (next to two-phase commits' and documents'). */
const RESUMABLE_LOCK_SPACE = LOCK_SPACE + 2;

export interface ImportRecord {
  table: string;
  /** The options that decide what the import loads, as given the first time. */
  options: Record<string, unknown>;
  inputSize: number | null;
  batchSize: number;
  created: boolean;
  finished: boolean;
  rows: number;
  rejected: number;
}

export interface BatchEntry {
  bytes: number;
  digest: number;
  rows: number;
  rejected: number;
}

/** Length and CRC-32 of a batch's bytes: cheap, and enough to see that the input changed. */
export function digestOf(chunks: readonly Buffer[]): number {
  let crc = 0;
  for (const c of chunks) crc = crc32(c, crc);
  return crc;
}

export async function ensureLedger(client: pg.Client): Promise<void> {
  const present = async () => {
    const r = await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS ok', [BATCHES, REJECTS]);
    return r.rows[0]?.ok === true;
  };
  await ensureDataioObjects(client, 'keeps the ledger of resumable imports (--import-id)', present, [
    `CREATE TABLE IF NOT EXISTS ${IMPORTS} (
       import_id text PRIMARY KEY, table_name text NOT NULL, options jsonb NOT NULL, input_size bigint,
       batch_size bigint NOT NULL, created_table boolean NOT NULL, started_at timestamptz NOT NULL DEFAULT now(),
       finished_at timestamptz, rows bigint, rejected bigint)`,
    `CREATE TABLE IF NOT EXISTS ${BATCHES} (
       import_id text NOT NULL, batch_offset bigint NOT NULL, bytes bigint NOT NULL, digest bigint NOT NULL,
       rows bigint NOT NULL, rejected integer NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(),
       PRIMARY KEY (import_id, batch_offset))`,
    `CREATE TABLE IF NOT EXISTS ${REJECTS} (
       import_id text NOT NULL, batch_offset bigint NOT NULL, seq integer NOT NULL, line bigint NOT NULL,
       byte_offset bigint NOT NULL, col text, sqlstate text, message text NOT NULL, record bytea NOT NULL,
       PRIMARY KEY (import_id, batch_offset, seq))`,
  ]);
}

/** One process per import id: a session lock, released when the connection ends (even by a crash). */
export async function tryLockImport(client: pg.Client, id: string): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [RESUMABLE_LOCK_SPACE, id]);
  return r.rows[0]?.ok === true;
}

export async function readImport(client: pg.Client, id: string): Promise<ImportRecord | undefined> {
  const r = await client.query<{ table_name: string; options: Record<string, unknown>; input_size: string | null; batch_size: string; created_table: boolean; finished: boolean; rows: string | null; rejected: string | null }>(
    `SELECT table_name, options, input_size, batch_size, created_table, finished_at IS NOT NULL AS finished,
            coalesce(rows, (SELECT sum(rows) FROM ${BATCHES} WHERE import_id = $1), 0) AS rows,
            coalesce(rejected, (SELECT sum(rejected) FROM ${BATCHES} WHERE import_id = $1), 0) AS rejected
       FROM ${IMPORTS} WHERE import_id = $1`,
    [id],
  );
  const row = r.rows[0];
  if (row === undefined) return undefined;
  return {
    table: row.table_name,
    options: row.options,
    inputSize: row.input_size === null ? null : Number(row.input_size),
    batchSize: Number(row.batch_size),
    created: row.created_table,
    finished: row.finished,
    rows: Number(row.rows ?? 0),
    rejected: Number(row.rejected ?? 0),
  };
}

export async function insertImport(client: pg.Client, id: string, rec: Omit<ImportRecord, 'finished' | 'rows' | 'rejected'>): Promise<void> {
  await client.query(`INSERT INTO ${IMPORTS} (import_id, table_name, options, input_size, batch_size, created_table) VALUES ($1, $2, $3, $4, $5, $6)`, [
    id,
    rec.table,
    JSON.stringify(rec.options),
    rec.inputSize,
    rec.batchSize,
    rec.created,
  ]);
}

export async function finishImport(client: pg.Client, id: string): Promise<void> {
  await client.query(
    `UPDATE ${IMPORTS} SET finished_at = now(),
            rows = (SELECT coalesce(sum(rows), 0) FROM ${BATCHES} WHERE import_id = $1),
            rejected = (SELECT coalesce(sum(rejected), 0) FROM ${BATCHES} WHERE import_id = $1)
      WHERE import_id = $1`,
    [id],
  );
}

/** The batches already in, by byte offset. */
export async function loadedBatches(client: pg.Client, id: string): Promise<Map<number, BatchEntry>> {
  const r = await client.query<{ batch_offset: string; bytes: string; digest: string; rows: string; rejected: number }>(
    `SELECT batch_offset, bytes, digest, rows, rejected FROM ${BATCHES} WHERE import_id = $1`,
    [id],
  );
  return new Map(r.rows.map((x) => [Number(x.batch_offset), { bytes: Number(x.bytes), digest: Number(x.digest), rows: Number(x.rows), rejected: x.rejected }]));
}

/** Inside a batch's transaction: is it in already (its commit went through, but the reply was lost)? */
export async function batchEntry(client: pg.Client, id: string, offset: number): Promise<BatchEntry | undefined> {
  const r = await client.query<{ bytes: string; digest: string; rows: string; rejected: number }>(
    `SELECT bytes, digest, rows, rejected FROM ${BATCHES} WHERE import_id = $1 AND batch_offset = $2`,
    [id, offset],
  );
  const x = r.rows[0];
  return x === undefined ? undefined : { bytes: Number(x.bytes), digest: Number(x.digest), rows: Number(x.rows), rejected: x.rejected };
}

/** Inside a batch's transaction, after its COPY: the ledger row and the batch's rejects. */
export async function recordBatch(client: pg.Client, id: string, offset: number, entry: BatchEntry, rejects: readonly Reject[]): Promise<void> {
  await client.query(`INSERT INTO ${BATCHES} (import_id, batch_offset, bytes, digest, rows, rejected) VALUES ($1, $2, $3, $4, $5, $6)`, [
    id,
    offset,
    entry.bytes,
    entry.digest,
    entry.rows,
    entry.rejected,
  ]);
  if (rejects.length === 0) return;
  await client.query(
    `INSERT INTO ${REJECTS} (import_id, batch_offset, seq, line, byte_offset, col, sqlstate, message, record)
     SELECT $1, $2, s.seq, s.line, s.byte_offset, s.col, s.sqlstate, s.message, s.record
       FROM unnest($3::int[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::bytea[])
            AS s(seq, line, byte_offset, col, sqlstate, message, record)`,
    [
      id,
      offset,
      rejects.map((_, i) => i),
      rejects.map((r) => r.line),
      rejects.map((r) => r.offset),
      rejects.map((r) => r.column ?? null),
      rejects.map((r) => r.sqlstate ?? null),
      rejects.map((r) => r.message),
      rejects.map((r) => r.raw),
    ],
  );
}

/** Every reject of the import, in input order, a page at a time (bounded memory). */
export async function* storedRejects(client: pg.Client, id: string, page = 1000): AsyncGenerator<Reject[]> {
  let after: [number, number] = [-1, -1];
  for (;;) {
    const r = await client.query<{ batch_offset: string; seq: number; line: string; byte_offset: string; col: string | null; sqlstate: string | null; message: string; record: Buffer }>(
      `SELECT batch_offset, seq, line, byte_offset, col, sqlstate, message, record FROM ${REJECTS}
        WHERE import_id = $1 AND (batch_offset, seq) > ($2, $3) ORDER BY batch_offset, seq LIMIT $4`,
      [id, after[0], after[1], page],
    );
    if (r.rows.length === 0) return;
    yield r.rows.map((x) => ({ line: Number(x.line), offset: Number(x.byte_offset), column: x.col ?? undefined, sqlstate: x.sqlstate ?? undefined, message: x.message, raw: x.record }));
    const last = r.rows[r.rows.length - 1];
    if (last === undefined || r.rows.length < page) return;
    after = [Number(last.batch_offset), last.seq];
  }
}

/** The ledger's batches, met in input order: which batch is in, and whether the input is still the same. */
export class LedgerCursor {
  private readonly entries: [number, BatchEntry][];
  private next = 0;
  private readonly id: string;

  constructor(id: string, done: Map<number, BatchEntry>) {
    this.id = id;
    this.entries = [...done.entries()].sort((a, b) => a[0] - b[0]);
  }

  /**
   * The ledger entry of `batch` if it is in. Every entry must be met at exactly a batch's start: one
   * that falls elsewhere means the input was cut differently, i.e. it changed.
   */
  match(batch: { offset: number; endOffset: number; bytes: number; chunks: readonly Buffer[]; firstLine: number }): BatchEntry | undefined {
    const e = this.entries[this.next];
    if (e === undefined || e[0] >= batch.endOffset) return undefined;
    if (e[0] !== batch.offset || e[1].bytes !== batch.bytes || e[1].digest !== digestOf(batch.chunks)) {
      throw new DataioError('IMPORT_STATE', `the input is not the one import ${JSON.stringify(this.id)} started with: it differs at byte offset ${Math.min(e[0], batch.offset)} (input line ${batch.firstLine} or before)`, {
        hint: 'resume with the same input and options, or choose a new --import-id',
      });
    }
    this.next++;
    return e[1];
  }

  /** At the end of the input: batches of the ledger past it mean an input that is shorter than it was. */
  finish(): void {
    const e = this.entries[this.next];
    if (e !== undefined) {
      throw new DataioError('IMPORT_STATE', `the input is not the one import ${JSON.stringify(this.id)} started with: it ends before byte offset ${e[0]}, where a batch of it was loaded`, {
        hint: 'resume with the same input and options, or choose a new --import-id',
      });
    }
  }
}

/** Refuse a rerun whose options differ from the first run's, naming the first difference. */
export function checkSameOptions(id: string, recorded: Record<string, unknown>, now: Record<string, unknown>): void {
  const keys = [...new Set([...Object.keys(recorded), ...Object.keys(now)])];
  for (const k of keys) {
    const a = JSON.stringify(recorded[k] ?? null);
    const b = JSON.stringify(now[k] ?? null);
    if (a !== b) {
      throw new DataioError('IMPORT_STATE', `import ${JSON.stringify(id)} was started with ${k} ${a}, not ${b}: the same import id must get the same input and options`, {
        hint: 'run it with the options it started with, or choose a new --import-id',
      });
    }
  }
}

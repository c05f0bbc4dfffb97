/**
 * The ledger of resumable imports (--import-id), in the dataio schema. Each batch commits in one
 * transaction with its ledger row turning `done` (and its rejects), so after any crash the ledger says
 * exactly which batches are in: a rerun loads the others, and nothing twice.
 *
 * Several processes (on several hosts) can run one import id at once: each cuts the same input into
 * the same batches (the cut is deterministic for a given input and batch size, which is kept in the
 * import's row) and, before loading one, claims it: a ledger row `claimed` with a lease (owner,
 * expiry, renewed by a heartbeat). A batch claimed by a live process is left to it; one whose lease
 * is over (its process died) is taken over with a compare-and-set. Completion is conditional on the
 * claim (`state = 'claimed' AND owner = me`, in the batch's own transaction), so whatever happens a
 * batch is counted once. Batches are keyed by input file and byte offset and checked by length and
 * CRC-32, so a changed input is refused.
 *
 * On a Citus cluster the ledger tables are distributed by import id (one import's rows on one shard,
 * reachable from every node), so processes pointed at different nodes share one import and a batch
 * loaded through a worker node commits with its ledger row in one (Citus) transaction.
 */
import type pg from 'pg';
import { DataioError } from '../../errors.js';
import { zlib } from '../../lazy-builtin.js';
import { BATCH_POSITION_DDL, BATCH_POSITION_PRESENT } from './batch-position.js';
import { ensureDataioObjects } from '../../pg/dataio-schema.js';
import { quoteLiteral } from '../../pg/ident.js';
import { queryEach } from '../../pg/statements.js';
import {
  LEASE_COLUMNS_DDL,
  LEASE_SELECT,
  leaseAssign,
  leaseOver,
  leaseParams,
  leaseSeconds,
  leaseUnchanged,
  leaseUnchangedParams,
  liveBackends,
  type Holder,
  type LeaseRow,
} from '../../pg/lease.js';
import type { Batch } from '../cut/batcher.js';
import { endOf } from '../cut/join-files.js';
import type { Reject } from '../load/rejects.js';
import { positionOf, type MovedReject } from './move-skipping.js';

export const IMPORTS = 'dataio.imports';
export const BATCHES = 'dataio.import_batches';
export const REJECTS = 'dataio.import_rejects';

export interface ImportRecord {
  table: string;
  /** The options that decide what the import loads, as given the first time. */
  options: Record<string, unknown>;
  /** The input files (name and size) the import started with. */
  inputs: { name: string; size: number | null }[] | null;
  batchSize: number;
  created: boolean;
  /** Upsert with --import-id: the staging table the batches go to, moved into the table at the end. */
  staging: string | null;
  finished: boolean;
  rows: number;
  rejected: number;
}

/** A batch's place in the input: its file and byte offset there. */
export interface BatchKey {
  file: number;
  offset: number;
}

export interface BatchEntry {
  bytes: number;
  digest: number;
  rows: number;
  rejected: number;
}

/** Length and CRC-32 of a batch's bytes: cheap, and enough to see that the input changed. */
export function digestOf(chunks: readonly Buffer[]): number {
  const { crc32 } = zlib();
  let crc = 0;
  for (const c of chunks) crc = crc32(c, crc);
  return crc;
}

const DDL = [
  `CREATE TABLE IF NOT EXISTS ${IMPORTS} (
     import_id text PRIMARY KEY, table_name text NOT NULL, options jsonb NOT NULL, inputs jsonb, input_size bigint,
     batch_size bigint NOT NULL, created_table boolean NOT NULL, staging text, started_at timestamptz NOT NULL DEFAULT now(),
     finished_at timestamptz, rows bigint, rejected bigint)`,
  `CREATE TABLE IF NOT EXISTS ${BATCHES} (
     import_id text NOT NULL, file_no integer NOT NULL DEFAULT 0, batch_offset bigint NOT NULL, bytes bigint NOT NULL,
     digest bigint NOT NULL, state text NOT NULL DEFAULT 'done' CHECK (state IN ('claimed', 'done')), rows bigint,
     rejected integer, loaded_at timestamptz, ${LEASE_COLUMNS_DDL},
     PRIMARY KEY (import_id, file_no, batch_offset))`,
  `CREATE TABLE IF NOT EXISTS ${REJECTS} (
     import_id text NOT NULL, file_no integer NOT NULL DEFAULT 0, batch_offset bigint NOT NULL, seq integer NOT NULL,
     line bigint NOT NULL, byte_offset bigint NOT NULL, col text, sqlstate text, message text NOT NULL, record bytea NOT NULL,
     moved boolean NOT NULL DEFAULT false, PRIMARY KEY (import_id, file_no, batch_offset, seq))`,
];

/** The ledger of an earlier dataio (one input file, no claims) takes the new columns. */
const MIGRATE = [
  `ALTER TABLE ${IMPORTS} ADD COLUMN IF NOT EXISTS inputs jsonb, ADD COLUMN IF NOT EXISTS staging text`,
  `ALTER TABLE ${BATCHES} ADD COLUMN IF NOT EXISTS file_no integer NOT NULL DEFAULT 0,
     ADD COLUMN IF NOT EXISTS state text NOT NULL DEFAULT 'done' CHECK (state IN ('claimed', 'done')),
     ADD COLUMN IF NOT EXISTS owner text, ADD COLUMN IF NOT EXISTS lease_until timestamptz, ADD COLUMN IF NOT EXISTS holder_server text,
     ADD COLUMN IF NOT EXISTS holder_pid integer, ADD COLUMN IF NOT EXISTS holder_start timestamptz,
     ALTER COLUMN rows DROP NOT NULL, ALTER COLUMN rejected DROP NOT NULL, ALTER COLUMN loaded_at DROP NOT NULL, ALTER COLUMN loaded_at DROP DEFAULT`,
  `ALTER TABLE ${BATCHES} DROP CONSTRAINT IF EXISTS import_batches_pkey, ADD PRIMARY KEY (import_id, file_no, batch_offset)`,
  `ALTER TABLE ${REJECTS} ADD COLUMN IF NOT EXISTS file_no integer NOT NULL DEFAULT 0, ADD COLUMN IF NOT EXISTS moved boolean NOT NULL DEFAULT false`,
  `ALTER TABLE ${REJECTS} DROP CONSTRAINT IF EXISTS import_rejects_pkey, ADD PRIMARY KEY (import_id, file_no, batch_offset, seq)`,
];

/** On Citus: one import's rows on one shard, reachable from every node. */
const DISTRIBUTE = [
  `SELECT create_distributed_table('${IMPORTS}', 'import_id') WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = '${IMPORTS}'::regclass)`,
  `SELECT create_distributed_table('${BATCHES}', 'import_id', colocate_with => '${IMPORTS}') WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = '${BATCHES}'::regclass)`,
  `SELECT create_distributed_table('${REJECTS}', 'import_id', colocate_with => '${IMPORTS}') WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = '${REJECTS}'::regclass)`,
];

/** The ledger is there as this dataio needs it (with `citus`: distributed, so every node reaches it). */
export async function ledgerPresent(client: pg.Client, citus: boolean): Promise<boolean> {
  // The claim columns (not only the tables) must be there: an earlier dataio's ledger is migrated.
  const r = await client.query<{ ok: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL
            AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($2) AND attname = 'holder_start')
            AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($3) AND attname = 'moved')
            ${citus ? `AND EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass($2))` : `AND ${BATCH_POSITION_PRESENT}`} AS ok`,
    [IMPORTS, BATCHES, REJECTS],
  );
  return r.rows[0]?.ok === true;
}

/** Make (or migrate) the ledger unless it is there. On Citus this runs on the coordinator (DDL is made there). */
export async function ensureLedger(client: pg.Client, citus: boolean): Promise<void> {
  await ensureDataioObjects(client, 'keeps the ledger of resumable imports (--import-id)', () => ledgerPresent(client, citus), [...DDL, ...MIGRATE, ...(citus ? DISTRIBUTE : [BATCH_POSITION_DDL])]);
}

export async function readImport(client: pg.Client, id: string): Promise<ImportRecord | undefined> {
  const r = await client.query<{
    table_name: string;
    options: Record<string, unknown>;
    inputs: { name: string; size: number | null }[] | null;
    batch_size: string;
    created_table: boolean;
    staging: string | null;
    finished: boolean;
    rows: string | null;
    rejected: string | null;
  }>(
    `SELECT table_name, options, inputs, batch_size, created_table, staging, finished_at IS NOT NULL AS finished,
            coalesce(rows, (SELECT sum(rows) FROM ${BATCHES} WHERE import_id = $1 AND state = 'done'), 0) AS rows,
            coalesce(rejected, (SELECT sum(rejected) FROM ${BATCHES} WHERE import_id = $1 AND state = 'done'), 0) AS rejected
       FROM ${IMPORTS} WHERE import_id = $1`,
    [id],
  );
  const row = r.rows[0];
  if (row === undefined) return undefined;
  return {
    table: row.table_name,
    options: row.options,
    inputs: row.inputs,
    batchSize: Number(row.batch_size),
    created: row.created_table,
    staging: row.staging,
    finished: row.finished,
    rows: Number(row.rows ?? 0),
    rejected: Number(row.rejected ?? 0),
  };
}

/**
 * Record a new import (inside the caller's transaction). False when another process recorded the same
 * id first: the caller then rolls back and joins that one (its row is read again).
 */
export async function insertImport(client: pg.Client, id: string, rec: Omit<ImportRecord, 'finished' | 'rows' | 'rejected'>): Promise<boolean> {
  const r = await client.query(
    `INSERT INTO ${IMPORTS} (import_id, table_name, options, inputs, batch_size, created_table, staging) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (import_id) DO NOTHING`,
    [id, rec.table, JSON.stringify(rec.options), JSON.stringify(rec.inputs), rec.batchSize, rec.created, rec.staging],
  );
  return r.rowCount === 1;
}

/** Mark the import finished (once: false when another process did it first). */
export async function finishImport(client: pg.Client, id: string): Promise<boolean> {
  const r = await client.query(
    `UPDATE ${IMPORTS} SET finished_at = now(),
            rows = (SELECT coalesce(sum(rows), 0) FROM ${BATCHES} WHERE import_id = $1 AND state = 'done'),
            rejected = (SELECT coalesce(sum(rejected), 0) FROM ${BATCHES} WHERE import_id = $1 AND state = 'done')
      WHERE import_id = $1 AND finished_at IS NULL`,
    [id],
  );
  return r.rowCount === 1;
}

export type Claim =
  /** Ours to load now. */
  | { kind: 'ours' }
  /** In already; counted by whoever loaded it (`mine`: this process, in a commit whose reply was lost). */
  | { kind: 'done'; entry: BatchEntry; mine: boolean }
  /** Held by another live process. */
  | { kind: 'held' };

interface BatchRow extends LeaseRow {
  state: 'claimed' | 'done';
  bytes: string;
  digest: string;
  rows: string | null;
  rejected: number | null;
}

function changed(id: string, key: BatchKey, line: number, where: string): DataioError {
  return new DataioError('IMPORT_STATE', `the input is not the one import ${JSON.stringify(id)} started with: it differs at byte offset ${key.offset}${where} (input line ${line} or before)`, {
    hint: 'resume with the same input and options, or choose a new --import-id',
  });
}

/** One process's view of one import's ledger: claims, completions, the lease heartbeat. */
export class Ledger {
  readonly id: string;
  private readonly client: pg.Client;
  private readonly holder: Holder;
  private readonly fileName: (file: number) => string;

  constructor(client: pg.Client, id: string, holder: Holder, fileName: (file: number) => string) {
    this.client = client;
    this.id = id;
    this.holder = holder;
    this.fileName = fileName;
  }

  private keySql(key: BatchKey): string {
    return `import_id = ${quoteLiteral(this.id)} AND file_no = ${key.file} AND batch_offset = ${key.offset}`;
  }

  private leaseSql(): string {
    const h = this.holder;
    const start = h.started === null ? 'NULL' : `${quoteLiteral(h.started.toISOString())}::timestamptz`;
    return `${quoteLiteral(h.owner)}, now() + interval '${leaseSeconds()} seconds', ${quoteLiteral(h.server)}, ${h.pid ?? 'NULL'}, ${start}`;
  }

  /**
   * Claim a batch before loading it: a new row, or a claim of ours from before (a retry), or one whose
   * lease is over (then with a compare-and-set: judge()). A new batch costs one round trip; the claim
   * needs no durability (a claim lost in a crash is just claimed again), so it commits asynchronously.
   * (No condition on the ON CONFLICT: Citus refuses now() there.)
   */
  async claim(key: BatchKey, batch: { bytes: number; digest: number; firstLine: number }): Promise<Claim> {
    const cols = 'import_id, file_no, batch_offset, bytes, digest, state, owner, lease_until, holder_server, holder_pid, holder_start';
    const results = await queryEach(
      this.client,
      `BEGIN; SET LOCAL synchronous_commit = off;
       INSERT INTO ${BATCHES} AS b (${cols})
       VALUES (${quoteLiteral(this.id)}, ${key.file}, ${key.offset}, ${batch.bytes}, ${batch.digest}, 'claimed', ${this.leaseSql()})
       ON CONFLICT (import_id, file_no, batch_offset) DO NOTHING;
       SELECT state, bytes, digest, rows, rejected, ${LEASE_SELECT} FROM ${BATCHES} WHERE ${this.keySql(key)};
       COMMIT`,
    );
    const row = results[3]?.rows[0] as BatchRow | undefined;
    if (row === undefined) throw new DataioError('INTERNAL', `the ledger row of the batch at byte offset ${key.offset} vanished`);
    return this.judge(key, batch, row);
  }

  private async judge(key: BatchKey, batch: { bytes: number; digest: number; firstLine: number }, row: BatchRow): Promise<Claim> {
    if (Number(row.bytes) !== batch.bytes || Number(row.digest) !== batch.digest) throw changed(this.id, key, batch.firstLine, this.where(key));
    if (row.state === 'done') {
      return { kind: 'done', entry: { bytes: batch.bytes, digest: batch.digest, rows: Number(row.rows ?? 0), rejected: row.rejected ?? 0 }, mine: row.owner === this.holder.owner };
    }
    if (row.owner === this.holder.owner) return { kind: 'ours' };
    // Held by another process: take it over only when its lease is over (known early when its holder
    // ran on this server and its backend is gone).
    const live = row.holder_server === this.holder.server && row.holder_pid !== null ? await liveBackends(this.client) : undefined;
    if (!leaseOver(row, row.now, live)) return { kind: 'held' };
    const taken = await this.client.query(`UPDATE ${BATCHES} SET ${leaseAssign(1)} WHERE ${this.keySql(key)} AND state = 'claimed' AND ${leaseUnchanged(6)}`, [
      ...leaseParams(this.holder),
      ...leaseUnchangedParams(row),
    ]);
    return taken.rowCount === 1 ? { kind: 'ours' } : { kind: 'held' };
  }

  /** " of b.csv" when the import reads several files, else nothing. */
  where(key: BatchKey): string {
    const name = this.fileName(key.file);
    return name === '' ? '' : ` of ${name}`;
  }

  /**
   * Inside the batch's transaction, after its COPY: the batch is done, if it is still ours. False when
   * another process took it over (our lease lapsed): the caller rolls back, and that process counts it.
   */
  async complete(client: pg.Client, key: BatchKey, rows: number, rejects: readonly Reject[]): Promise<boolean> {
    const r = await client.query(
      `UPDATE ${BATCHES} SET state = 'done', rows = $1, rejected = $2, loaded_at = now(), lease_until = NULL
        WHERE ${this.keySql(key)} AND state = 'claimed' AND owner = $3`,
      [rows, rejects.length, this.holder.owner],
    );
    if (r.rowCount !== 1) return false;
    if (rejects.length === 0) return true;
    await client.query(
      `INSERT INTO ${REJECTS} (import_id, file_no, batch_offset, seq, line, byte_offset, col, sqlstate, message, record)
       SELECT $1, $2, $3, s.seq, s.line, s.byte_offset, s.col, s.sqlstate, s.message, s.record
         FROM unnest($4::int[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::bytea[])
              AS s(seq, line, byte_offset, col, sqlstate, message, record)`,
      [
        this.id,
        key.file,
        key.offset,
        rejects.map((_, i) => i),
        rejects.map((r) => r.line),
        rejects.map((r) => r.offset),
        rejects.map((r) => r.column ?? null),
        rejects.map((r) => r.sqlstate ?? null),
        rejects.map((r) => r.message),
        rejects.map((r) => r.raw),
      ],
    );
    return true;
  }

  /**
   * Rows refused when an upsert's staging table was moved (inside that transaction): stored with the
   * batch they came in (after its own rejects), and counted in the import's totals.
   */
  async movedRejects(client: pg.Client, rejects: readonly MovedReject[]): Promise<void> {
    if (rejects.length === 0) return;
    await client.query(
      `INSERT INTO ${REJECTS} (import_id, file_no, batch_offset, seq, line, byte_offset, col, sqlstate, message, record, moved)
       SELECT $1, f, o, 1000000000 + s, l, b, c, q, m, r, true
         FROM unnest($2::int[], $3::bigint[], $4::int[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::bytea[]) AS x(f, o, s, l, b, c, q, m, r)`,
      [
        this.id,
        rejects.map((r) => positionOf(r.position).file),
        rejects.map((r) => positionOf(r.position).offset),
        rejects.map((_, i) => i),
        rejects.map((r) => r.line),
        rejects.map((r) => r.offset),
        rejects.map((r) => r.column ?? null),
        rejects.map((r) => r.sqlstate ?? null),
        rejects.map((r) => r.message),
        rejects.map((r) => r.raw),
      ],
    );
    await client.query(`UPDATE ${IMPORTS} SET rejected = rejected + $2, rows = rows - $2 WHERE import_id = $1`, [this.id, rejects.length]);
  }

  /** Extend the leases of every batch this process holds (the heartbeat). */
  async renew(): Promise<void> {
    await this.client.query(`UPDATE ${BATCHES} SET lease_until = now() + make_interval(secs => $3) WHERE import_id = $1 AND owner = $2 AND state = 'claimed'`, [
      this.id,
      this.holder.owner,
      leaseSeconds(),
    ]);
  }

  /** Give up this process's claims at once (it failed): another process need not wait for the expiry. */
  async release(): Promise<void> {
    await this.client.query(`UPDATE ${BATCHES} SET lease_until = now() WHERE import_id = $1 AND owner = $2 AND state = 'claimed'`, [this.id, this.holder.owner]);
  }

  /**
   * Where the import stands: batches done and still claimed, in all; `seen` is how many batches this
   * process's input has (a ledger with more means the input changed).
   */
  async status(): Promise<{ done: number; claimed: number; total: number; rows: number; rejected: number; nextExpiry: Date | null; now: Date }> {
    const r = await this.client.query<{ done: string; claimed: string; total: string; rows: string; rejected: string; next: Date | null; now: Date }>(
      `SELECT count(*) FILTER (WHERE state = 'done') AS done, count(*) FILTER (WHERE state = 'claimed') AS claimed, count(*) AS total,
              coalesce(sum(rows) FILTER (WHERE state = 'done'), 0) AS rows, coalesce(sum(rejected) FILTER (WHERE state = 'done'), 0) AS rejected,
              min(lease_until) FILTER (WHERE state = 'claimed') AS next, now() AS now
         FROM ${BATCHES} WHERE import_id = $1`,
      [this.id],
    );
    const x = r.rows[0] as { done: string; claimed: string; total: string; rows: string; rejected: string; next: Date | null; now: Date };
    return { done: Number(x.done), claimed: Number(x.claimed), total: Number(x.total), rows: Number(x.rows), rejected: Number(x.rejected), nextExpiry: x.next, now: x.now };
  }

  /** The claims of other processes whose lease is over now (their batches need loading again). */
  async lapsedClaims(): Promise<number> {
    const r = await this.client.query<LeaseRow>(
      `SELECT ${LEASE_SELECT} FROM ${BATCHES}
        WHERE import_id = $1 AND state = 'claimed' AND owner IS DISTINCT FROM $2`,
      [this.id, this.holder.owner],
    );
    if (r.rows.length === 0) return 0;
    const live = r.rows.some((x) => x.holder_server === this.holder.server && x.holder_pid !== null) ? await liveBackends(this.client) : undefined;
    return r.rows.filter((x) => leaseOver(x, x.now, live)).length;
  }

  /** Every reject of the import, in input order, a page at a time (bounded memory). */
  async *rejects(page = 1000): AsyncGenerator<Reject[]> {
    let after: [number, number, number] = [-1, -1, -1];
    for (;;) {
      const r = await this.client.query<{ file_no: number; batch_offset: string; seq: number; line: string; byte_offset: string; col: string | null; sqlstate: string | null; message: string; record: Buffer; moved: boolean }>(
        `SELECT file_no, batch_offset, seq, line, byte_offset, col, sqlstate, message, record, moved FROM ${REJECTS}
          WHERE import_id = $1 AND (file_no, batch_offset, seq) > ($2, $3, $4) ORDER BY file_no, batch_offset, seq LIMIT $5`,
        [this.id, after[0], after[1], after[2], page],
      );
      if (r.rows.length === 0) return;
      yield r.rows.map((x) => {
        const file = this.fileName(x.file_no);
        return {
          ...(file === '' ? {} : { file }),
          line: Number(x.line),
          offset: Number(x.byte_offset),
          column: x.col ?? undefined,
          sqlstate: x.sqlstate ?? undefined,
          message: x.message,
          raw: x.record,
          ...(x.moved ? { moved: true } : {}),
        };
      });
      const last = r.rows[r.rows.length - 1];
      if (last === undefined || r.rows.length < page) return;
      after = [last.file_no, Number(last.batch_offset), last.seq];
    }
  }
}

/**
 * The ledger's batches as they were when a pass over the input began, met in input order: every one
 * must fall exactly on a batch start of the input. One that falls inside a batch means the input was
 * cut differently, i.e. it changed (loading that batch would load rows twice); one past the input's
 * end means the input got shorter.
 */
export class Alignment {
  private readonly keys: BatchKey[];
  private next = 0;
  private readonly id: string;
  private readonly where: (key: BatchKey) => string;

  private constructor(id: string, keys: BatchKey[], where: (key: BatchKey) => string) {
    this.id = id;
    this.keys = keys;
    this.where = where;
  }

  static async read(client: pg.Client, id: string, where: (key: BatchKey) => string): Promise<Alignment> {
    const r = await client.query<{ file_no: number; batch_offset: string }>(`SELECT file_no, batch_offset FROM ${BATCHES} WHERE import_id = $1 ORDER BY file_no, batch_offset`, [id]);
    return new Alignment(id, r.rows.map((x) => ({ file: x.file_no, offset: Number(x.batch_offset) })), where);
  }

  /**
   * The input's next batch: ledger entries before its end must be at its start. A batch joined from
   * several small files (cut/join-files.ts) ends in its last part's file.
   */
  check(batch: BatchKey & Pick<Batch, 'endOffset' | 'firstLine' | 'segments'>): void {
    const end = endOf(batch);
    const before = (e: BatchKey) => e.file < end.file || (e.file === end.file && e.offset < end.endOffset);
    for (let e = this.keys[this.next]; e !== undefined && before(e); e = this.keys[this.next]) {
      if (e.file !== batch.file || e.offset !== batch.offset) {
        const at = e.file === batch.file ? Math.min(e.offset, batch.offset) : batch.offset;
        throw new DataioError('IMPORT_STATE', `the input is not the one import ${JSON.stringify(this.id)} started with: it differs at byte offset ${at}${this.where(batch)} (input line ${batch.firstLine} or before)`, {
          hint: 'resume with the same input and options, or choose a new --import-id',
        });
      }
      this.next++;
    }
  }

  /** At the end of the input: ledger batches past it mean an input that is shorter than it was. */
  finish(): void {
    const e = this.keys[this.next];
    if (e !== undefined) {
      throw new DataioError('IMPORT_STATE', `the input is not the one import ${JSON.stringify(this.id)} started with: it ends before byte offset ${e.offset}${this.where(e)}, where a batch of it was loaded`, {
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

/**
 * Refuse a rerun over other inputs than the first run's: another number of files, or a file of
 * another size. (Names may change, a file may move: its bytes are what the batches' digests check.)
 */
export function checkSameInputs(id: string, recorded: ImportRecord['inputs'], now: { name: string; size: number | null }[]): void {
  if (recorded === null) return;
  const differ = (what: string) =>
    new DataioError('IMPORT_STATE', `the input is not the one import ${JSON.stringify(id)} started with: ${what}`, {
      hint: 'resume with the same input, or choose a new --import-id',
    });
  if (recorded.length !== now.length) throw differ(`it has ${now.length} ${now.length === 1 ? 'file' : 'files'}, not ${recorded.length}`);
  recorded.forEach((r, i) => {
    const n = now[i] as { name: string; size: number | null };
    if (r.size !== null && n.size !== null && r.size !== n.size) throw differ(`${now.length === 1 ? 'it' : n.name} has ${n.size} bytes, not ${r.size}`);
  });
}

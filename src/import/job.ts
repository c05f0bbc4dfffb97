/**
 * What every import shares, whatever the input format: the coordinator connection, the worker count,
 * the COPY pool, progress, the all-or-nothing commit, and undoing on failure (rolling every connection
 * back, dropping a table that --create made).
 */
import type pg from 'pg';
import { DataioError } from '../errors.js';
import type { InputSource } from '../io/input.js';
import { lookupTable, type TableInfo } from '../pg/catalog.js';
import { connectClient, type ConnectionTarget } from '../pg/connect.js';
import { displayName, qualifiedName, quoteIdent, type TableName } from '../pg/ident.js';
import { mapQueryError } from '../pg/pg-errors.js';
import type { Progress } from '../progress/progress.js';
import { CopyPool } from './copy-pool.js';
import { loadBatches, type EngineBatch } from './engine.js';
import { autoBatchSize, autoWorkers } from '../workers.js';
import {
  decideCommit,
  ensureDecisionTable,
  finishPrepared,
  forgetDecision,
  gidFor,
  lockImport,
  maxPreparedTransactions,
  newImportId,
  settleLeftovers,
  unlockImport,
} from './two-phase.js';

export interface ImportResult {
  table: string;
  rows: number;
  /** Decompressed input bytes loaded. */
  bytes: number;
  batches: number;
  workers: number;
  seconds: number;
  created: boolean;
}

export interface ImportHooks {
  progress(total: number | undefined): Progress;
  warn(message: string): void;
  /** Aborted on SIGINT/SIGTERM: stop feeding, roll everything back. */
  signal?: AbortSignal;
}

export interface JobOptions {
  tableName: TableName;
  /** A number, or 'auto': 32, or as many as the CPU cores when the server is on this machine. */
  workers: number | 'auto';
  /** Bytes per batch, or 'auto' (see autoBatchSize). */
  batchSize: number | 'auto';
  truncate: boolean;
}

/** What a format-specific importer hands the job once it has read enough of its input. */
export interface LoadPlan<B extends EngineBatch> {
  table: TableInfo;
  /** The COPY … FROM STDIN statement every batch is loaded with (without FREEZE; the job adds it). */
  copySql: string;
  created: boolean;
  batches: AsyncIterable<B>;
  mapError(err: unknown, batch: B): DataioError;
  /** Where in the input a loaded batch ends, for progress (bytes comparable with input.size). */
  progressBytes(batch: B): number;
}

/** Keep memory at O(workers × batch size) and never above this many bytes of batches in flight. */
const MAX_IN_FLIGHT_BYTES = 128 * 1024 * 1024;

async function freeConnections(client: pg.Client): Promise<number> {
  const r = await client.query<{ free: number }>(
    `SELECT current_setting('max_connections')::int
            - current_setting('superuser_reserved_connections')::int
            - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS free`,
  );
  return r.rows[0]?.free ?? 0;
}

/** How many workers to use: no more than the server has connections free (keeping one spare). */
async function chooseWorkers(client: pg.Client, o: JobOptions, local: boolean, warn: (m: string) => void): Promise<number> {
  let workers = o.workers === 'auto' ? autoWorkers(local) : o.workers;
  const free = await freeConnections(client);
  if (free - 1 < workers) {
    const reduced = Math.max(1, free - 1);
    if (reduced < workers) warn(`the server has ${free} free connections: using ${reduced} workers instead of ${workers}`);
    workers = reduced;
  }
  if (o.truncate && workers > 1) {
    // TRUNCATE takes a lock that admits no other writer until commit, and it must share the load's
    // transaction so that a failed import leaves the old rows in place: one connection, then.
    warn('--truncate loads over one connection (TRUNCATE locks out other writers until the commit)');
    workers = 1;
  }
  return workers;
}

export function createTableSql(t: TableName, columns: readonly { name: string; type: string }[]): string {
  return `CREATE TABLE ${qualifiedName(t)} (${columns.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ')})`;
}

/** Find the table, or with --create make it (committed, so every worker sees it). */
export async function findOrCreateTable(
  client: pg.Client,
  t: TableName,
  create: { columns: readonly { name: string; type: string }[] } | undefined,
): Promise<{ table: TableInfo; created: boolean }> {
  const existing = await lookupTable(client, t);
  if (create === undefined) {
    if (!existing) {
      throw new DataioError('TABLE_NOT_FOUND', `table ${displayName(t)} does not exist`, {
        hint: 'check the name (schema.table), or pass --create to make it from the input',
      });
    }
    return { table: existing, created: false };
  }
  if (existing) {
    throw new DataioError('TABLE_EXISTS', `table ${existing.display} already exists`, {
      hint: 'drop --create to load into it, or choose another --table',
    });
  }
  const names = create.columns.map((c) => c.name);
  names.forEach((n, i) => {
    if (n === '') throw new DataioError('INPUT_FORMAT', `input column ${i + 1} has no name`, { hint: 'name it, or pass --columns' });
  });
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new DataioError('INPUT_FORMAT', `the input names the column "${dup}" twice`, { hint: 'rename one, or pass --columns' });
  if (names.length === 0) throw new DataioError('INPUT_FORMAT', 'the input has no columns to create a table from');
  try {
    await client.query(createTableSql(t, create.columns));
  } catch (err) {
    throw mapQueryError(err, { action: `create table ${displayName(t)}` });
  }
  const table = await lookupTable(client, t);
  if (!table) throw new DataioError('INTERNAL', `table ${displayName(t)} vanished right after it was created`);
  return { table, created: true };
}

/** Settle what a crashed import left prepared (see two-phase.ts); a failure here only warns. */
async function settle(client: pg.Client, warn: (m: string) => void): Promise<void> {
  try {
    const s = await settleLeftovers(client);
    if (s.committed.length > 0) warn(`finished the commit of an interrupted import (${s.committed.length} prepared transactions)`);
    if (s.rolledBack.length > 0) warn(`rolled back an interrupted import (${s.rolledBack.length} prepared transactions)`);
  } catch (err) {
    warn(`could not settle prepared transactions left by an interrupted import: ${(err as Error).message}`);
  }
}

/**
 * Commit every worker's transaction: one connection commits atomically by itself; several go through
 * two-phase commit when the server allows enough prepared transactions and the decision table can be
 * made, else (with a warning) commit one after the other, where a crash in between would leave part.
 */
async function commitAll(coordinator: pg.Client, pool: CopyPool, warn: (m: string) => void, decided: () => void): Promise<void> {
  if (pool.size <= 1) return pool.commit();
  const max = await maxPreparedTransactions(coordinator);
  let reason = max < pool.size ? `max_prepared_transactions is ${max}, below the ${pool.size} connections` : undefined;
  if (reason === undefined) {
    try {
      await ensureDecisionTable(coordinator);
    } catch (err) {
      reason = (err as Error).message;
    }
  }
  if (reason !== undefined) {
    warn(`committing the ${pool.size} connections one after the other, not crash-safe: ${reason}`);
    return pool.commit();
  }
  const importId = newImportId();
  await lockImport(coordinator, importId);
  try {
    let prepared: string[];
    try {
      prepared = await pool.prepare((w) => gidFor(importId, w));
    } catch (err) {
      for (const gid of (err as { prepared?: string[] }).prepared ?? []) await finishPrepared(coordinator, gid, false).catch(() => undefined);
      throw err;
    }
    await decideCommit(coordinator, importId);
    decided();
    for (const gid of prepared) await finishPrepared(coordinator, gid, true);
    await forgetDecision(coordinator, importId);
  } finally {
    await unlockImport(coordinator, importId).catch(() => undefined);
  }
}

export async function runImport<B extends EngineBatch>(
  target: ConnectionTarget,
  o: JobOptions,
  input: InputSource,
  hooks: ImportHooks,
  plan: (coordinator: pg.Client, batchSize: number) => Promise<LoadPlan<B>>,
): Promise<ImportResult> {
  const action = `import into ${displayName(o.tableName)}`;
  const started = Date.now();
  let coordinator: pg.Client | undefined;
  let pool: CopyPool | undefined;
  let p: LoadPlan<B> | undefined;
  let progress: Progress | undefined;
  /** The commit is decided (two-phase): the import must not be undone any more. */
  let decided = false;
  try {
    coordinator = await connectClient(target, 'dataio import');
    await settle(coordinator, hooks.warn);
    const workers = await chooseWorkers(coordinator, o, target.local === true, hooks.warn);
    const batchSize = o.batchSize === 'auto' ? autoBatchSize(workers) : o.batchSize;
    p = await plan(coordinator, batchSize);
    const { table } = p;
    // FREEZE: rows loaded into a table truncated in the same transaction can be written frozen,
    // sparing the later vacuum (not allowed for partitioned tables).
    const copySql = o.truncate && table.kind === 'r' ? p.copySql.replace(/\)$/, ', FREEZE)') : p.copySql;
    pool = new CopyPool({
      target,
      maxWorkers: workers,
      copySql,
      warn: hooks.warn,
      ...(o.truncate ? { sessionSql: [`TRUNCATE ${table.sql}`] } : {}),
    });
    const activeProgress = hooks.progress(input.size);
    progress = activeProgress;
    const plan_ = p;
    let rows = 0;
    let bytes = 0;
    let batches = 0;
    let done = 0;
    await loadBatches(p.batches, {
      pool,
      workers,
      maxInFlight: Math.max(2, Math.min(2 * workers, Math.floor(MAX_IN_FLIGHT_BYTES / batchSize))),
      monitor: coordinator,
      action,
      ...(hooks.signal !== undefined ? { signal: hooks.signal } : {}),
      onLoaded: (batch, n) => {
        rows += n;
        bytes += batch.bytes;
        batches++;
        // Loaded bytes, not read ones (reading runs ahead by the batches in flight); for gzip only
        // the compressed bytes read compare with the file's size.
        done = Math.max(done, plan_.progressBytes(batch));
        activeProgress.update({ bytes: input.gzip && input.size !== undefined ? input.rawBytesRead() : done, rows });
      },
      mapError: (err, batch) => plan_.mapError(err, batch),
    });
    // Every batch is in: make it all visible at once.
    await commitAll(coordinator, pool, hooks.warn, () => (decided = true));
    progress.stop();
    progress = undefined;
    return { table: table.display, rows, bytes, batches, workers: pool.size, seconds: (Date.now() - started) / 1000, created: p.created };
  } catch (err) {
    progress?.stop();
    if (decided) {
      throw new DataioError('DB_ERROR', `${action}: the commit was decided but could not be finished: ${(err as Error).message}`, {
        hint: 'the rows are committed or will be: the next dataio import on this database finishes the commit',
        cause: err,
      });
    }
    await pool?.rollback();
    if (p?.created && coordinator) {
      await coordinator.query(`DROP TABLE IF EXISTS ${p.table.sql}`).catch(() => undefined);
    }
    throw err instanceof DataioError ? err : mapQueryError(err, { action });
  } finally {
    await pool?.close();
    await coordinator?.end().catch(() => undefined);
  }
}

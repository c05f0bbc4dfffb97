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
import { displayName, parseTableName, qualifiedName, quoteIdent, type TableName } from '../pg/ident.js';
import { mapQueryError } from '../pg/pg-errors.js';
import { isTransientFailure, withRetry } from '../pg/retry.js';
import type { Progress } from '../progress/progress.js';
import { loadBatch, loadBatchResumable, type BatchLoadContext, type BatchOutcome, type BatchRecords } from './batch-load.js';
import { CopyPool } from './copy-pool.js';
import { loadBatches, type EngineBatch } from './engine.js';
import {
  checkSameOptions,
  ensureLedger,
  finishImport,
  insertImport,
  loadedBatches,
  readImport,
  storedRejects,
  tryLockImport,
  LedgerCursor,
  type ImportRecord,
} from './ledger.js';
import { markRetryable } from './retry-import.js';
import { defaultRejectsPath, InOrder, RejectsFile, type Reject, type RejectsLayout } from './rejects.js';
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
  /** Rows rejected (--on-error skip), in this run and, resuming, in earlier ones. */
  rejected: number;
  /** Where the rejected records and their log are, when any were rejected. */
  rejectsFile?: string;
  rejectsLog?: string;
  /** Resumable imports: the id, and the rows that earlier runs had loaded. */
  importId?: string;
  earlierRows?: number;
  /** Resumable: the import had finished before this run; nothing was loaded. */
  alreadyComplete?: boolean;
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
  /** abort: the first bad row fails the import; skip: bad rows are rejected and the rest loaded. */
  onError: 'abort' | 'skip';
  /** skip: more rejected rows than this fail the import as abort would. */
  maxErrors?: number | undefined;
  /** skip: the rejects file (its log is FILE.log). */
  rejectsPath?: string | undefined;
  /** Resumable mode: batches commit one by one with a ledger row under this id. */
  resume?: { id: string; options: Record<string, unknown> } | undefined;
}

/** The job's options from the command's; `loads` are the options that decide what is loaded (a resumed import must get the same). */
export function jobOptionsOf(
  o: CommonImportOptions,
  ext: string,
  loads: Record<string, unknown>,
): JobOptions {
  const tableName = parseTableName(o.table);
  return {
    tableName,
    workers: o.workers,
    batchSize: o.batchSize,
    truncate: o.truncate,
    onError: o.onError,
    maxErrors: o.maxErrors,
    rejectsPath: o.onError === 'skip' ? (o.rejectsPath ?? defaultRejectsPath(o.input, o.table, ext)) : undefined,
    resume: o.importId === undefined ? undefined : { id: o.importId, options: { table: displayName(tableName), ...loads } },
  };
}

/** The options every input format takes. */
export interface CommonImportOptions {
  /** A file, or - for stdin. */
  input: string;
  table: string;
  create: boolean;
  truncate: boolean;
  workers: number | 'auto';
  batchSize: number | 'auto';
  sampleRows: number;
  onError: 'abort' | 'skip';
  maxErrors?: number | undefined;
  /** skip: the rejects file (default: next to the input, see defaultRejectsPath). */
  rejectsPath?: string | undefined;
  /** Resumable mode under this id. */
  importId?: string | undefined;
}

/** What the job tells the format's plan. */
export interface PlanContext {
  /** Resuming an import that created its table: the table is there, and it is the one to load. */
  tableIsOurs: boolean;
  /** Resuming: the table must be there (rows of the import are in it). */
  resuming: boolean;
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
  /** A batch's records one by one (skip mode, when a batch failed). */
  records(batch: B): BatchRecords;
  /** How the rejects file is laid out (the input's header, framing). */
  rejectsLayout: RejectsLayout;
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

/**
 * How many workers to use: no more than the server has connections free (keeping one spare); `own`
 * connections of ours opened already count as free.
 */
async function chooseWorkers(client: pg.Client, o: JobOptions, local: boolean, warn: (m: string) => void, own: number): Promise<number> {
  let workers = o.workers === 'auto' ? autoWorkers(local) : o.workers;
  const free = (await freeConnections(client)) + own;
  if (free - 1 < workers) {
    const reduced = Math.max(1, free - 1);
    if (reduced < workers) warn(`the server has ${free} free connections: using ${reduced} workers instead of ${workers}`);
    workers = reduced;
  }
  if (o.truncate && workers > 1 && o.resume === undefined) {
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
  ctx: PlanContext = { tableIsOurs: false, resuming: false },
): Promise<{ table: TableInfo; created: boolean }> {
  const existing = await lookupTable(client, t);
  if (ctx.resuming && !existing) {
    throw new DataioError('IMPORT_STATE', `table ${displayName(t)} of the resumable import is gone, with the rows loaded into it`, {
      hint: 'start over with a new --import-id',
    });
  }
  if (create === undefined || (existing && ctx.tableIsOurs)) {
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
    try {
      await pool.prepare((w) => gidFor(importId, w));
    } catch (err) {
      for (const gid of (err as { prepared?: string[] }).prepared ?? []) await finishPrepared(coordinator, gid, false).catch(() => undefined);
      throw err;
    }
    await decideCommit(coordinator, importId);
    decided();
    // Each worker commits its own; one whose connection failed meanwhile is committed from here.
    for (const gid of await pool.commitPrepared()) await finishPrepared(coordinator, gid, true);
    await forgetDecision(coordinator, importId);
  } finally {
    await unlockImport(coordinator, importId).catch(() => undefined);
  }
}

/** Delays before loading a batch again after a transient failure (resumable mode), about 30 s in all. */
const BATCH_RETRY_MS: readonly number[] = [500, 1000, 2000, 4000, 8000, 15000];

/** Drop the table an all-or-nothing import created, on a fresh connection if the coordinator is gone. */
async function dropCreated(target: ConnectionTarget, coordinator: pg.Client | undefined, table: TableInfo, warn: (m: string) => void): Promise<void> {
  const sql = `DROP TABLE IF EXISTS ${table.sql}`;
  try {
    if (!coordinator) throw new Error('no connection');
    await coordinator.query(sql);
  } catch {
    let fresh: pg.Client | undefined;
    try {
      fresh = await connectClient(target, 'dataio import');
      await fresh.query(sql);
    } catch (err) {
      warn(`could not drop the table ${table.display} that this import created: ${(err as Error).message}`);
    } finally {
      await fresh?.end().catch(() => undefined);
    }
  }
}

export async function runImport<B extends EngineBatch & { endOffset: number }>(
  target: ConnectionTarget,
  o: JobOptions,
  input: InputSource,
  hooks: ImportHooks,
  plan: (coordinator: pg.Client, batchSize: number, ctx: PlanContext) => Promise<LoadPlan<B>>,
): Promise<ImportResult> {
  const action = `import into ${displayName(o.tableName)}`;
  const started = Date.now();
  const resume = o.resume;
  let coordinator: pg.Client | undefined;
  let pool: CopyPool | undefined;
  let p: LoadPlan<B> | undefined;
  let progress: Progress | undefined;
  let rejectsFile: RejectsFile | undefined;
  let record: ImportRecord | undefined;
  /** 'commit': the all-or-nothing commit began; its outcome may be unknown, so no retry. */
  let phase: 'setup' | 'load' | 'commit' = 'setup';
  /** The commit is decided (two-phase): the import must not be undone any more. */
  let decided = false;
  let rows = 0;
  let earlierRows = 0;
  let rejected = 0;
  /** The coordinator's connection ended under us (a server restart, say): worth another try. */
  let coordinatorLost = false;
  try {
    if (!o.truncate || resume !== undefined) {
      // The first workers' connections open side by side with the coordinator's (a --truncate import
      // opens its one connection once it knows the table). No more than two before the server's free
      // connections are counted, as few as the import needs anyway.
      pool = new CopyPool({
        target,
        maxWorkers: o.workers === 'auto' ? autoWorkers(target.local === true) : o.workers,
        transactions: resume !== undefined ? 'batch' : 'import',
        warn: hooks.warn,
        sessionSql: resume !== undefined ? ['SET synchronous_commit = off'] : [],
      });
      pool.prewarm(target.local === true ? 2 : 1);
    }
    coordinator = await connectClient(target, 'dataio import');
    const lost = () => (coordinatorLost = true);
    coordinator.on('end', lost);
    coordinator.on('error', lost);
    await settle(coordinator, hooks.warn);
    const workers = await chooseWorkers(coordinator, o, target.local === true, hooks.warn, pool?.claimed ?? 0);
    let batchSize = o.batchSize === 'auto' ? autoBatchSize(workers) : o.batchSize;
    if (resume !== undefined) {
      await ensureLedger(coordinator);
      if (!(await tryLockImport(coordinator, resume.id))) {
        throw new DataioError('IMPORT_STATE', `import ${JSON.stringify(resume.id)} is being run by another dataio process`, {
          hint: 'wait for it to end (if it fails, run this command again to go on)',
        });
      }
      record = await readImport(coordinator, resume.id);
      if (record !== undefined) {
        checkSameOptions(resume.id, record.options, resume.options);
        if (record.inputSize !== null && input.size !== undefined && record.inputSize !== input.size) {
          throw new DataioError('IMPORT_STATE', `the input is not the one import ${JSON.stringify(resume.id)} started with: it has ${input.size} bytes, not ${record.inputSize}`, {
            hint: 'resume with the same input, or choose a new --import-id',
          });
        }
        if (record.finished) {
          return {
            table: record.table,
            rows: 0,
            bytes: 0,
            batches: 0,
            workers: 0,
            seconds: (Date.now() - started) / 1000,
            created: false,
            rejected: record.rejected,
            importId: resume.id,
            earlierRows: record.rows,
            alreadyComplete: true,
          };
        }
        if (o.batchSize !== 'auto' && o.batchSize !== record.batchSize) {
          hooks.warn(`import ${JSON.stringify(resume.id)} goes on with the batch size it started with (${record.batchSize} bytes), not --batch-size`);
        }
        batchSize = record.batchSize;
        earlierRows = record.rows;
        rejected = record.rejected;
      } else {
        // The table (--create), the TRUNCATE and the import's ledger row commit together.
        await coordinator.query('BEGIN');
      }
    }
    // The rest of the workers' connections open while the plan reads the input's start and looks up
    // the table.
    pool?.limit(workers);
    pool?.prewarm();
    p = await plan(coordinator, batchSize, { tableIsOurs: record?.created === true, resuming: record !== undefined });
    const { table } = p;
    if (resume !== undefined && record === undefined) {
      if (o.truncate) await coordinator.query(`TRUNCATE ${table.sql}`);
      await insertImport(coordinator, resume.id, { table: table.display, options: resume.options, inputSize: input.size ?? null, batchSize, created: p.created });
      await coordinator.query('COMMIT');
    }
    const ledger = resume !== undefined ? new LedgerCursor(resume.id, await loadedBatches(coordinator, resume.id)) : undefined;
    // FREEZE: rows loaded into a table truncated in the same transaction can be written frozen,
    // sparing the later vacuum (not allowed for partitioned tables).
    const freeze = o.truncate && resume === undefined && table.kind === 'r';
    const copySql = freeze ? p.copySql.replace(/\)$/, ', FREEZE)') : p.copySql;
    if (pool === undefined) {
      pool = new CopyPool({ target, maxWorkers: workers, transactions: 'import', warn: hooks.warn, sessionSql: [`TRUNCATE ${table.sql}`] });
    }
    const activePool = pool;
    const activeProgress = hooks.progress(input.size);
    progress = activeProgress;
    const plan_ = p;
    let bytes = 0;
    let batches = 0;
    let done = 0;
    const showProgress = (batch: B) => {
      // Loaded bytes, not read ones (reading runs ahead by the batches in flight); for gzip only the
      // compressed bytes read compare with the file's size.
      done = Math.max(done, plan_.progressBytes(batch));
      activeProgress.update({
        bytes: input.gzip && input.size !== undefined ? input.rawBytesRead() : done,
        rows: earlierRows + rows,
        ...(o.onError === 'skip' ? { rejected } : {}),
      });
    };
    if (o.onError === 'skip' && resume === undefined && o.rejectsPath !== undefined) rejectsFile = new RejectsFile(o.rejectsPath, p.rejectsLayout);
    const file = rejectsFile;
    const ordered = file !== undefined ? new InOrder<Reject[]>((r) => file.append(r)) : undefined;
    const countRejects = (found: readonly Reject[]) => {
      rejected += found.length;
      const last = found[found.length - 1];
      if (o.maxErrors !== undefined && rejected > o.maxErrors && last !== undefined) {
        throw new DataioError('DATA_ERROR', `${action} failed: more than ${o.maxErrors} rows rejected (--max-errors); the last at input line ${last.line}${last.column ? `, column ${last.column}` : ''}: ${last.message}`, {
          hint: `see what was rejected so far in ${file?.path ?? 'the rejects file'} and its .log, or raise --max-errors`,
          line: last.line,
        });
      }
    };
    const ctx: BatchLoadContext<B> = { copySql, onError: o.onError, records: (b) => plan_.records(b), cancelled: new Set() };
    const load = async (batch: B): Promise<BatchOutcome> => {
      if (resume === undefined) return activePool.run(batch, (c) => loadBatch(c, batch, ctx));
      return withRetry(
        () => activePool.run(batch, (c) => loadBatchResumable(c, batch, ctx, resume.id)),
        (err) => isTransientFailure(err) && hooks.signal?.aborted !== true,
        BATCH_RETRY_MS,
        (err, delay) => hooks.warn(`the batch at input line ${batch.firstLine} failed (${(err as Error).message}): loading it again in ${delay / 1000} s`),
      );
    };
    async function* toLoad(): AsyncGenerator<B> {
      for await (const batch of plan_.batches) {
        const entry = ledger?.match(batch);
        if (entry === undefined) {
          yield batch;
          continue;
        }
        showProgress(batch);
        batch.release?.();
      }
    }
    phase = 'load';
    await loadBatches(toLoad(), {
      pool: activePool,
      load,
      siblingWaits: resume !== undefined ? 'off' : o.onError === 'skip' ? 'cancel' : 'fail',
      cancelled: ctx.cancelled,
      workers,
      maxInFlight: Math.max(2, Math.min(2 * workers, Math.floor(MAX_IN_FLIGHT_BYTES / batchSize))),
      monitor: coordinator,
      action,
      ...(hooks.signal !== undefined ? { signal: hooks.signal } : {}),
      onLoaded: async (batch, outcome) => {
        if (outcome.already !== undefined) {
          rows += outcome.already.rows;
          rejected += outcome.already.rejected;
        } else {
          rows += outcome.rows;
          countRejects(outcome.rejects);
        }
        bytes += batch.bytes;
        batches++;
        showProgress(batch);
        await ordered?.put(batch.index, outcome.rejects);
      },
      mapError: (err, batch) => plan_.mapError(err, batch),
    });
    let rejectsAt: { rejectsFile: string; rejectsLog: string } | undefined;
    if (resume !== undefined) {
      ledger?.finish();
      await finishImport(coordinator, resume.id);
      if (rejected > 0 && o.rejectsPath !== undefined) {
        // The rejects of every run, from the ledger (where they were committed with their batches).
        const all = new RejectsFile(o.rejectsPath, p.rejectsLayout);
        try {
          for await (const page of storedRejects(coordinator, resume.id)) await all.append(page);
        } finally {
          await all.close();
        }
        rejectsAt = { rejectsFile: all.path, rejectsLog: all.logPath };
      }
    } else {
      phase = 'commit';
      // Every batch is in: make it all visible at once.
      await commitAll(coordinator, activePool, hooks.warn, () => (decided = true));
    }
    if (file !== undefined) {
      await file.close();
      if (file.count > 0) rejectsAt = { rejectsFile: file.path, rejectsLog: file.logPath };
    }
    progress.stop();
    progress = undefined;
    return {
      table: table.display,
      rows,
      bytes,
      batches,
      workers: activePool.size,
      seconds: (Date.now() - started) / 1000,
      created: p.created || record?.created === true,
      rejected,
      ...rejectsAt,
      ...(resume !== undefined ? { importId: resume.id, earlierRows } : {}),
    };
  } catch (err) {
    progress?.stop();
    await rejectsFile?.close().catch(() => undefined);
    if (decided) {
      throw new DataioError('DB_ERROR', `${action}: the commit was decided but could not be finished: ${(err as Error).message}`, {
        hint: 'the rows are committed or will be: the next dataio import on this database finishes the commit',
        cause: err,
      });
    }
    const failure = err instanceof DataioError ? err : mapQueryError(err, { action });
    const transient = coordinatorLost || isTransientFailure(err) || isTransientFailure(failure);
    if (resume !== undefined) {
      const out = resumableFailure(failure, resume.id, earlierRows + rows, phase !== 'setup' || record !== undefined);
      if (transient) markRetryable(out);
      throw out;
    }
    await pool?.rollback();
    if (p?.created) await dropCreated(target, coordinator, p.table, hooks.warn);
    const out =
      failure.code === 'INTERRUPTED'
        ? new DataioError('INTERRUPTED', `${failure.message}: everything it loaded was rolled back`, { cause: failure })
        : rejected > 0 && rejectsFile !== undefined && rejectsFile.count > 0
          ? withHint(failure, `nothing was loaded; the ${rejectsFile.count} rows rejected before the failure are in ${rejectsFile.path}`)
          : failure;
    if (phase !== 'commit' && transient) markRetryable(out);
    throw out;
  } finally {
    await pool?.close();
    await coordinator?.end().catch(() => undefined);
  }
}

function withHint(err: DataioError, hint: string): DataioError {
  return new DataioError(err.code, err.message, {
    hint: err.hint === undefined ? hint : `${err.hint}; ${hint}`,
    ...(err.line !== undefined ? { line: err.line } : {}),
    ...(err.detail !== undefined ? { detail: err.detail } : {}),
    cause: err.cause ?? err,
    transient: err.transient,
  });
}

/** A resumable import's failure says what is in and how to go on. */
function resumableFailure(err: DataioError, id: string, rowsIn: number, started: boolean): DataioError {
  if (!started || err.code === 'IMPORT_STATE' || err.code === 'USAGE') return err;
  const what = `${rowsIn} rows of import ${JSON.stringify(id)} are in`;
  if (err.code === 'INTERRUPTED') {
    return new DataioError('INTERRUPTED', `${err.message}: ${what}`, { hint: 'run the same command again to load the rest, exactly once', cause: err });
  }
  const fix = err.code === 'DATA_ERROR' ? 'fix the input, or add --on-error skip to set bad rows aside, and ' : '';
  return withHint(err, `${what}; ${fix}run the same command again to load the rest, exactly once`);
}

/**
 * The steps of an import (job.ts reads them as its plan) and the state they share: the coordinating
 * connection, what the server allows, the pool of COPY connections, the counts, progress and the
 * rejects file. What differs between the ways of committing lives in the commit mode, not here.
 */
import type pg from 'pg';
import { DataioError } from '../errors.js';
import type { TableInfo } from '../pg/catalog.js';
import { connectClient, coordinatorTarget, hangUp, nodeTargets, withClient, type ConnectionTarget } from '../pg/connect.js';
import { displayName, quoteIdent } from '../pg/ident.js';
import { isTransientFailure, withRetry } from '../pg/retry.js';
import { serverFacts, type ServerFacts } from '../pg/server.js';
import type { Progress } from '../progress/progress.js';
import { autoBatchSize, autoWorkers, SHARED_COPY_BATCH_SIZE } from '../workers.js';
import { chooseMode } from './commit/choose.js';
import { batchPosition } from './commit/mode.js';
import { checkSameInputs, checkSameOptions, ensureLedger, ledgerPresent, readImport, type ImportRecord } from './commit/ledger.js';
import type { CommitMode, Prepared } from './commit/mode.js';
import { Resumable } from './commit/resumable.js';
import { dropLeftoverStagings } from './commit/staging.js';
import { settleLeftovers } from './commit/two-phase.js';
import type { BatchLoadContext, BatchOutcome, LoadableBatch } from './load/batch-load.js';
import { CopyPool } from './load/copy-pool.js';
import { loadBatches } from './load/engine.js';
import { rowsByLines } from './load/streamed-copy.js';
import { InOrder, RejectsFile, type Reject } from './load/rejects.js';
import type { ImportHooks, ImportResult, JobOptions } from './options.js';
import type { Loader } from './plan/format.js';
import { findTable, type ColumnDef } from './plan/table.js';
import type { InputSet } from './read/inputs.js';

/** Keep memory at O(workers × batch size) and never above this many bytes of batches in flight. */
const MAX_IN_FLIGHT_BYTES = 128 * 1024 * 1024;

/** Delays before loading a batch again after a transient failure (resumable mode), about 30 s in all. */
const BATCH_RETRY_MS: readonly number[] = [500, 1000, 2000, 4000, 8000, 15000];

export class ImportJob<B extends LoadableBatch> {
  readonly o: JobOptions;
  private readonly target: ConnectionTarget;
  private readonly inputs: InputSet;
  private readonly hooks: ImportHooks;
  private readonly action: string;
  private readonly started = Date.now();
  private coordinator: pg.Client | undefined;
  private facts: ServerFacts | undefined;
  private pool: CopyPool | undefined;
  private mode: CommitMode<B> | undefined;
  private loader: Loader<B> | undefined;
  private progress: Progress | undefined;
  private rejectsFile: RejectsFile | undefined;
  private ordered: InOrder<Reject[]> | undefined;
  private record: ImportRecord | undefined;
  private table: TableInfo | undefined;
  /** The table as the first round trip found it (serverFacts), for chooseMode; undefined: look it up then. */
  private knownTable: { info: TableInfo | undefined } | undefined;
  private coordinatorNode = true;
  /** An upsert's key (--key, else the primary key). */
  private key: string[] | undefined;
  private workers = 1;
  private batchSize = 0;
  private copySql = '';
  /** The batches go into COPYs shared by a connection's batches (ready()). */
  private shared = false;
  private pass = 0;
  private done = 0;
  private rows = 0;
  private bytes = 0;
  private batches = 0;
  private rejected = 0;
  private earlierRows = 0;
  /** Where each batch begins, by its staging position (skip mode: rows refused when moved are named by their batch). */
  private readonly batchStarts = new Map<bigint, { file: number; line: number; offset: number }>();
  /** Backends the wait watcher cancelled (skip mode): their "canceling statement" is a row error. */
  private readonly cancelled = new Set<number>();
  /** 'commit': the final commit began; its outcome may be unknown, so no retry. */
  phase: 'setup' | 'load' | 'commit' = 'setup';
  /** The commit is decided (two-phase): the import must not be undone any more. */
  decided = false;
  /** The coordinator's connection ended under us (a server restart, say): worth another try. */
  coordinatorLost = false;

  constructor(target: ConnectionTarget, o: JobOptions, inputs: InputSet, hooks: ImportHooks) {
    this.target = target;
    this.o = o;
    this.inputs = inputs;
    this.hooks = hooks;
    this.action = `import into ${displayName(o.tableName)}`;
  }

  get client(): pg.Client {
    if (this.coordinator === undefined) throw new DataioError('INTERNAL', 'the import is not connected');
    return this.coordinator;
  }

  /** The server's server_version_num. */
  get serverVersion(): number {
    return this.server.version;
  }

  private get server(): ServerFacts {
    if (this.facts === undefined) throw new DataioError('INTERNAL', 'the import is not connected');
    return this.facts;
  }

  /**
   * Connect, and learn in one round trip what the server allows. A larger input's first COPY
   * connections open meanwhile; a small one (a batch or less) gets none: the coordinator's own
   * connection loads it.
   */
  async connect(): Promise<void> {
    const local = this.target.local === true;
    const maxWorkers = this.o.workers === 'auto' ? autoWorkers(local) : this.o.workers;
    const size = this.inputs.totalSize;
    const small = size !== undefined && size <= (this.o.batchSize === 'auto' ? autoBatchSize(maxWorkers) : this.o.batchSize) && this.o.resume === undefined;
    if (!small && maxWorkers > 1) {
      this.pool = new CopyPool({ targets: [this.target], maxWorkers, warn: this.hooks.warn });
      this.pool.prewarm(local ? 2 : 1);
    }
    const client = await (this.hooks.connection?.take() ?? connectClient(this.target, 'dataio import'));
    this.coordinator = client;
    const lost = () => (this.coordinatorLost = true);
    client.on('end', lost);
    client.on('error', lost);
    // The table's lookup rides along (a resumable import looks its table up as it joins the ledger).
    this.facts = await serverFacts(client, { connections: !small, table: this.o.resume === undefined ? this.o.tableName : undefined, primaryKey: this.o.onConflict !== 'error' });
    this.knownTable = this.facts.table;
    if (this.facts.citus) this.coordinatorNode = await isCoordinator(client);
    await this.settle();
    this.workers = small ? 1 : this.chooseWorkers(maxWorkers);
    this.batchSize = this.o.batchSize === 'auto' ? autoBatchSize(this.workers) : this.o.batchSize;
  }

  /** What crashed imports left: prepared transactions to settle, staging tables to drop (a failure only warns). */
  private async settle(): Promise<void> {
    const warn = this.hooks.warn;
    if (this.server.preparedLeftovers > 0) {
      // Finishing a crashed import's commit may make or change the table: look it up afresh.
      this.knownTable = undefined;
      try {
        const s = await settleLeftovers(this.client);
        if (s.committed.length > 0) warn(`finished the commit of an interrupted import (${s.committed.length} prepared transactions)`);
        if (s.rolledBack.length > 0) warn(`rolled back an interrupted import (${s.rolledBack.length} prepared transactions)`);
      } catch (err) {
        warn(`could not settle prepared transactions left by an interrupted import: ${(err as Error).message}`);
      }
    }
    if (this.server.stagingLeftovers && this.coordinatorNode) {
      try {
        await dropLeftoverStagings(this.client);
      } catch (err) {
        warn(`could not drop the staging tables of interrupted imports: ${(err as Error).message}`);
      }
    }
  }

  /** No more workers than the server has connections free (keeping one spare); ours opened already count as free. */
  private chooseWorkers(wanted: number): number {
    let workers = wanted;
    if (this.server.freeConnections === undefined) return workers;
    const free = this.server.freeConnections + (this.pool?.claimed ?? 0);
    if (free - 1 < workers) {
      const reduced = Math.max(1, free - 1);
      if (reduced < workers) this.hooks.warn(`the server has ${free} free connections: using ${reduced} workers instead of ${workers}`);
      workers = reduced;
    }
    return workers;
  }

  /** Resumable: the ledger's record of this id. A finished import is reported as such, and nothing is loaded. */
  async readLedger(): Promise<ImportResult | undefined> {
    const resume = this.o.resume;
    if (resume === undefined) return undefined;
    if (this.server.citus && !this.coordinatorNode) {
      // A Citus worker node takes no DDL: the ledger is made through the coordinator (then every node has it).
      if (!(await ledgerPresent(this.client, true))) await withClient(await coordinatorTarget(this.client, this.target), (c) => ensureLedger(c, true));
    } else {
      await ensureLedger(this.client, this.server.citus);
    }
    const record = await readImport(this.client, resume.id);
    if (record === undefined) return undefined;
    checkSameOptions(resume.id, record.options, resume.options);
    checkSameInputs(resume.id, record.inputs, this.inputDescription());
    if (record.finished) {
      return { ...this.counts(), table: record.table, workers: 0, nodes: 0, created: false, commit: 'resumable', rejected: record.rejected, importId: resume.id, earlierRows: record.rows, alreadyComplete: true };
    }
    if (this.o.batchSize !== 'auto' && this.o.batchSize !== record.batchSize) {
      this.hooks.warn(`import ${JSON.stringify(resume.id)} goes on with the batch size it started with (${record.batchSize} bytes), not --batch-size`);
    }
    this.batchSize = record.batchSize;
    this.record = record;
    this.earlierRows = record.rows;
    this.rejected = record.rejected;
    return undefined;
  }

  private inputDescription(): { name: string; size: number | null }[] {
    return this.inputs.files.map((f) => ({ name: f.path, size: f.size ?? null }));
  }

  /** --create, and not a resumed import that made its table already. */
  get wantsNewTable(): boolean {
    return this.o.create && this.record?.created !== true;
  }

  /** Find the table (as the command expects it), then choose, once, how the import commits. */
  async chooseMode(create: ColumnDef[] | undefined): Promise<CommitMode<B>> {
    const resume = this.o.resume;
    const record = this.record;
    const makes = this.wantsNewTable;
    // A resumable import's first run makes its table in the same transaction as its ledger row, and
    // another process starting the same id at once joins it: the mode finds the table then.
    if (!(makes && resume !== undefined)) {
      this.table = await findTable(this.client, this.o.tableName, { create: makes, resuming: record !== undefined, ours: record?.created === true, citus: this.server.citus }, this.knownTable);
    }
    const key = this.upsertKey(create);
    this.key = key;
    const ctx: BatchLoadContext<B> = { onError: this.o.onError, records: (b) => (this.loader as Loader<B>).records(b), cancelled: this.cancelled };
    const inputs = this.inputs;
    const mode = await chooseMode<B>({
      coordinator: this.client,
      target: this.target,
      facts: this.server,
      coordinatorNode: this.coordinatorNode,
      job: { ...this.o, key },
      tableName: this.o.tableName,
      table: this.table,
      create: makes ? create : undefined,
      workers: this.workers,
      ctx,
      record,
      resumable:
        resume === undefined
          ? undefined
          : {
              id: resume.id,
              options: resume.options,
              inputs: this.inputDescription(),
              batchSize: this.batchSize,
              fileName: (i) => (inputs.files.length > 1 ? (inputs.files[i]?.path ?? '?') : ''),
              signal: this.hooks.signal,
              reopenable: inputs.reopenable,
              waiting: (m) => (this.hooks.note ?? this.hooks.warn)(m),
            },
      warn: this.hooks.warn,
      note: (m) => (this.hooks.note ?? (() => undefined))(m),
      onDecided: () => (this.decided = true),
    });
    if (mode.name === 'one connection') this.workers = 1;
    this.mode = mode;
    return mode;
  }

  /** An upsert's key: --key, else the table's primary key. */
  private upsertKey(create: ColumnDef[] | undefined): string[] | undefined {
    if (this.o.onConflict === 'error') return undefined;
    const name = displayName(this.o.tableName);
    const key = this.o.key ?? this.table?.primaryKey ?? [];
    if (key.length === 0) {
      throw new DataioError('USAGE', `--on-conflict ${this.o.onConflict} needs a key: ${this.table === undefined ? `the table --create makes has no primary key` : `table ${name} has no primary key`}`, {
        hint: 'name the columns that identify a row with --key a,b (a unique index must cover exactly them)',
      });
    }
    const columns = this.table?.columns.map((c) => c.name) ?? create?.map((c) => c.name) ?? [];
    const missing = key.find((k) => !columns.includes(k));
    if (missing !== undefined) throw new DataioError('COLUMN_NOT_FOUND', `--key names ${JSON.stringify(missing)}, which is not a column of ${name}`, { hint: `the table has: ${columns.slice(0, 20).join(', ')}` });
    return key;
  }

  async prepare(mode: CommitMode<B>): Promise<Prepared> {
    return mode.prepare();
  }

  /** The input's columns are known: make what batches go into, set up the pool, progress and rejects. */
  async ready(mode: CommitMode<B>, loader: Loader<B>): Promise<void> {
    this.loader = loader;
    if (this.o.onConflict !== 'error' && loader.columns !== undefined) {
      const missing = this.key?.find((k) => !loader.columns?.includes(k));
      if (missing !== undefined) throw new DataioError('USAGE', `the input has no column ${JSON.stringify(missing)}, which --key names`, { hint: 'an upsert matches rows by the key, so the input must hold it' });
    }
    const targets = mode.fanOut && this.o.nodes.kind !== 'none' ? await nodeTargets(this.client, this.target, this.o.nodes) : undefined;
    await mode.ready(loader.columns, {
      perNode: Math.ceil(this.workers / (targets?.length ?? 1)),
      serialize: loader.rejectsAs,
      allowed: () => (this.o.maxErrors === undefined ? Infinity : this.o.maxErrors - this.rejected),
      locate: (position) => {
        const at = this.batchStarts.get(position) ?? { file: 0, line: 0, offset: Number(position & 0xffffffffffn) };
        return { ...(this.inputs.files.length > 1 ? { file: this.inputs.files[at.file]?.path } : {}), line: at.line, offset: at.offset };
      },
    });
    const columns = loader.columns === undefined ? '' : ` (${loader.columns.map(quoteIdent).join(', ')})`;
    this.copySql = mode.copySql(columns, loader.copyOptions);
    // A connection's batches share one COPY where the mode runs nothing between them (streamed-copy.ts).
    // Not under a statement_timeout: it applies to a COPY as one statement, and the server may still be
    // loading what the kernel took long ago (a slow table: tests), so a client cannot keep a shared
    // COPY within it. Each batch is then a COPY of its own, as psql's \copy of that batch would be.
    this.shared = mode.sharedCopy && this.o.onError === 'abort' && loader.streamLines !== undefined && this.server.statementTimeoutMs === 0;
    if (this.shared && this.o.batchSize === 'auto') this.batchSize = Math.min(this.batchSize, SHARED_COPY_BATCH_SIZE);
    if (mode.name === 'one connection') {
      // One connection does everything: the coordinator's own, in the transaction its mode began.
      await this.pool?.close();
      this.pool = new CopyPool({ targets: [this.target], maxWorkers: 1, warn: this.hooks.warn });
      this.pool.adopt(this.client);
    } else {
      this.pool ??= new CopyPool({ targets: [this.target], maxWorkers: this.workers, warn: this.hooks.warn });
      this.pool.configure({ transactions: mode.transactions, openSql: mode.openSql, ...(targets !== undefined ? { targets } : {}) });
      this.pool.limit(this.workers);
      this.pool.prewarm();
    }
    this.progress = this.hooks.progress(this.inputs.totalSize);
    if (this.o.onError === 'skip' && !(mode instanceof Resumable) && this.o.rejectsPath !== undefined) {
      const file = new RejectsFile(this.o.rejectsPath, loader.rejectsLayout);
      this.rejectsFile = file;
      this.ordered = new InOrder<Reject[]>((r) => file.append(r));
    }
    this.phase = 'load';
  }

  /** One pass over the inputs: every batch the mode wants loaded goes to the pool. */
  async load(mode: CommitMode<B>, loader: Loader<B>): Promise<void> {
    const pool = this.pool as CopyPool;
    const pass = this.pass++;
    const shared = this.shared;
    // What the progress counted for streamed batches (their lines) until their COPYs end and tell.
    let counted = 0;
    const load = (batch: B): Promise<BatchOutcome> => {
      const lines = shared ? loader.streamLines?.(batch) : undefined;
      if (lines !== undefined) {
        const rows = rowsByLines(lines);
        counted += rows;
        return pool.stream(batch, this.copySql, lines).then(() => ({ rows, rejects: [] }));
      }
      const once = () => pool.run(batch, (c, pid) => mode.load(c, pid, batch, this.copySql));
      if (!(mode instanceof Resumable)) return once();
      return withRetry(
        once,
        (err) => isTransientFailure(err) && this.hooks.signal?.aborted !== true,
        BATCH_RETRY_MS,
        (err, delay) => this.hooks.warn(`the batch at ${this.inputs.where(batch.file, batch.firstLine)} failed (${(err as Error).message}): loading it again in ${delay / 1000} s`),
      );
    };
    const several = this.inputs.files.length > 1;
    await loadBatches(
      // Small files' ends share a COPY (the ledger keys a joined batch by its first part), except in
      // skip mode, which loads a failed batch again record by record.
      // A resumable import's ledger keys batches by where they begin: its cut stays the batch size's alone.
      mode.feed(loader.batches(this.batchSize, pass, this.o.onError === 'abort', !(mode instanceof Resumable)), (batch) => this.show(batch)),
      {
        pool,
        load,
        siblingWaits: mode.siblingWaits,
        cancelled: this.cancelled,
        workers: this.workers,
        maxInFlight: Math.max(2, Math.min(2 * this.workers, Math.floor(MAX_IN_FLIGHT_BYTES / this.batchSize))),
        monitor: this.client,
        action: this.action,
        ...(this.hooks.signal !== undefined ? { signal: this.hooks.signal } : {}),
        onLoaded: async (batch, outcome) => {
          if (outcome.already !== undefined) {
            this.rows += outcome.already.rows;
          } else {
            this.rows += outcome.rows;
            if (several) for (const r of outcome.rejects) r.file = this.inputs.files[batch.file]?.path;
            this.countRejects(outcome.rejects);
          }
          this.bytes += batch.bytes;
          this.batches++;
          this.show(batch);
          await this.ordered?.put(batch.index, outcome.rejects);
        },
        mapError: (err, batch) => loader.mapError(err, batch),
        ...(shared ? { streamed: { loaded: (rows: number) => this.recount(rows - counted) } } : {}),
      },
    );
  }

  /** Progress: loaded bytes, not read ones (reading runs ahead); for gzip only the compressed bytes read compare with the size. */
  private show(batch: B): void {
    if (this.o.onError === 'skip') this.batchStarts.set(batchPosition(batch.file, batch.offset), { file: batch.file, line: batch.firstLine, offset: batch.offset });
    this.done = Math.max(this.done, (this.loader as Loader<B>).progressBytes(batch));
    this.tell();
  }

  /** Streamed batches counted their lines as rows until their COPYs said how many rows they were: set it right. */
  private recount(correction: number): void {
    this.rows += correction;
    if (correction !== 0) this.tell();
  }

  private tell(): void {
    const gzip = this.inputs.totalSize !== undefined && this.inputs.anyGzip;
    this.progress?.update({
      bytes: gzip ? this.inputs.rawBytesRead() : this.done,
      rows: this.earlierRows + this.rows,
      ...(this.o.onError === 'skip' ? { rejected: this.rejected } : {}),
    });
  }

  private countRejects(found: readonly Reject[]): void {
    this.rejected += found.length;
    const last = found[found.length - 1];
    if (this.o.maxErrors !== undefined && this.rejected > this.o.maxErrors && last !== undefined) {
      const at = last.file !== undefined ? `${last.file}, line ${last.line}` : `input line ${last.line}`;
      throw new DataioError('DATA_ERROR', `${this.action} failed: more than ${this.o.maxErrors} rows rejected (--max-errors); the last at ${at}${last.column ? `, column ${last.column}` : ''}: ${last.message}`, {
        hint: `see what was rejected so far in ${this.rejectsFile?.path ?? 'the rejects file'} and its .log, or raise --max-errors`,
        line: last.line,
      });
    }
  }

  /** After a pass: does the mode need the inputs read again (a resumable import taking over a dead process's batches)? */
  async again(mode: CommitMode<B>): Promise<boolean> {
    if (!(mode instanceof Resumable)) return false;
    return (await mode.remaining()) === 'again';
  }

  /** Every batch is in: the mode makes it visible; resumable, the rejects file is written from the ledger. */
  async finish(mode: CommitMode<B>): Promise<void> {
    if (!(mode instanceof Resumable)) this.phase = 'commit';
    const moved = await mode.finish(this.pool as CopyPool);
    if (moved.length > 0) {
      // Refused when the staged rows were moved: after the rest (the transaction is committed; a
      // --max-errors exceeded now can no longer undo it, so the count is only reported).
      this.rejected += moved.length;
      await this.rejectsFile?.append(moved);
    }
    if (mode instanceof Resumable) {
      const st = await mode.ledger.status();
      this.earlierRows = st.rows - this.rows;
      this.rejected = st.rejected;
      if (st.rejected > 0 && this.o.rejectsPath !== undefined) {
        const all = new RejectsFile(this.o.rejectsPath, (this.loader as Loader<B>).rejectsLayout);
        try {
          for await (const page of mode.rejects()) await all.append(page);
        } finally {
          await all.close();
        }
        this.rejectsFile = all;
      }
    }
    await this.rejectsFile?.close();
    this.progress?.stop();
    this.progress = undefined;
  }

  private counts(): Pick<ImportResult, 'rows' | 'bytes' | 'batches' | 'seconds' | 'files'> {
    return { rows: this.rows, bytes: this.bytes, batches: this.batches, seconds: (Date.now() - this.started) / 1000, files: this.inputs.files.length };
  }

  async result(mode: CommitMode<B>, prepared: Prepared): Promise<ImportResult> {
    const file = this.rejectsFile;
    return {
      ...this.counts(),
      table: displayName(this.o.tableName),
      workers: this.pool?.size ?? 1,
      nodes: this.pool?.nodes ?? 1,
      created: prepared.created,
      commit: mode.name,
      rejected: this.rejected,
      ...(file !== undefined && file.count > 0 ? { rejectsFile: file.path, rejectsLog: file.logPath } : {}),
      ...(this.o.resume !== undefined ? { importId: this.o.resume.id, earlierRows: this.earlierRows } : {}),
      ...(mode.upserted !== undefined && this.o.onConflict !== 'error' ? { upsert: { onConflict: this.o.onConflict, ...mode.upserted } } : {}),
    };
  }

  /** Undo, as far as the mode undoes (nothing to undo before a mode was chosen). */
  async abort(failure: DataioError): Promise<void> {
    this.progress?.stop();
    await this.rejectsFile?.close().catch(() => undefined);
    await this.mode?.abort(this.pool, failure).catch((err: unknown) => this.hooks.warn(`could not undo everything: ${(err as Error).message}`));
  }

  /** The failure as the user reads it: what is in (resumable) or that nothing is, and how to go on. */
  explain(failure: DataioError): DataioError {
    const resume = this.o.resume;
    if (resume !== undefined) return resumableFailure(failure, resume.id, (this.record?.rows ?? 0) + this.rows, this.phase !== 'setup' || this.record !== undefined);
    if (failure.code === 'INTERRUPTED') return new DataioError('INTERRUPTED', `${failure.message}: everything it loaded was rolled back`, { cause: failure });
    const file = this.rejectsFile;
    if (this.rejected > 0 && file !== undefined && file.count > 0) return withHint(failure, `nothing was loaded; the ${file.count} rows rejected before the failure are in ${file.path}`);
    return failure;
  }

  async close(): Promise<void> {
    await this.mode?.close().catch(() => undefined);
    await this.pool?.close();
    if (this.coordinator !== undefined) hangUp(this.coordinator);
  }
}

async function isCoordinator(client: pg.Client): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>('SELECT citus_is_coordinator() AS ok');
  return r.rows[0]?.ok === true;
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

/** A resumable import's failure says how to go on: the same command loads what is missing. */
function resumableFailure(err: DataioError, id: string, rowsIn: number, started: boolean): DataioError {
  if (!started || err.code === 'IMPORT_STATE' || err.code === 'USAGE') return err;
  const what = `${rowsIn} rows of import ${JSON.stringify(id)} are in`;
  if (err.code === 'INTERRUPTED') {
    return new DataioError('INTERRUPTED', `${err.message}: ${what}`, { hint: 'run the same command again to load the rest, exactly once', cause: err });
  }
  const fix = err.code === 'DATA_ERROR' ? 'fix the input, or add --on-error skip to set bad rows aside, and ' : '';
  return withHint(err, `${what}; ${fix}run the same command again to load the rest, exactly once`);
}

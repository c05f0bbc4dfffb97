/**
 * A bounded pool of COPY connections. With 'import' transactions (one connection, or two-phase commit)
 * each connection holds one transaction for all the batches it loads (no savepoint per batch unless
 * --on-error skip asks for one: a savepoint per batch overflows the backend's 64-entry subtransaction
 * cache on a long import and slows every other session); nothing is visible until commit() or the
 * two-phase commit; rollback() undoes it all. With 'batch' transactions (staging, resumable) the
 * commit mode begins and commits a transaction per batch, and a connection that failed is replaced.
 * On a Citus cluster the connections are spread over its nodes (`targets`).
 */
import type pg from 'pg';
import { connectClient, hangUp, type ConnectionTarget } from '../../pg/connect.js';
import { DataioError } from '../../errors.js';
import { beginOnServer } from '../../pg/backend.js';
import { quoteLiteral } from '../../pg/ident.js';
import { isPgError } from '../../pg/pg-errors.js';
import { StreamedCopy, type StreamLines } from './streamed-copy.js';

export interface CopyWorkerBatch {
  chunks: Buffer[];
  firstLine: number;
}

interface Worker {
  client: pg.Client;
  id: number;
  /** Which of the targets it is connected to. */
  target: number;
  /** The server backend of its transaction ('import' transactions: for the whole import), for the wait watcher. */
  pid: number | undefined;
  /** A connection the pool was given (the job's own), not opened, and not closed, by the pool. */
  adopted: boolean;
  /** 'import' transactions: its transaction is open. */
  begun: boolean;
  broken: boolean;
  /** The connection ended (the server closed it, or the network failed). */
  lost: boolean;
  /** The batch this connection is loading now, if any (a streamed one only while it is being sent). */
  current: CopyWorkerBatch | undefined;
  /** Its open COPY, when batches are streamed (stream()). */
  copy: StreamedCopy<CopyWorkerBatch> | undefined;
}

export interface CopyPoolOptions {
  /** Where connections go: one server, or the nodes of a Citus cluster (spread evenly). */
  targets: readonly ConnectionTarget[];
  maxWorkers: number;
  warn(message: string): void;
}

/** How the commit mode uses the connections (see configure). */
export interface PoolUse {
  /** 'import': one transaction per connection, begun before its first batch; 'batch': the commit mode's, per batch. */
  transactions: 'import' | 'batch';
  /** Run inside each connection's transaction ('import' only), before its first COPY. */
  openSql?: readonly string[];
  /** Where connections go from now on (a Citus cluster's nodes): new connections spread over them. */
  targets?: readonly ConnectionTarget[];
}


export class CopyPool {
  private readonly o: CopyPoolOptions;
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private maxWorkers: number;
  private opening = 0;
  private closed = false;
  private nextId = 0;

  private use: PoolUse = { transactions: 'batch' };
  private targets: readonly ConnectionTarget[];

  constructor(o: CopyPoolOptions) {
    this.o = o;
    this.targets = o.targets;
    this.maxWorkers = Math.max(1, o.maxWorkers);
  }

  /**
   * Say how the connections are used, once the commit mode is chosen. Connections opened before (to
   * have them ready early) begin their transaction when they load their first batch.
   */
  configure(use: PoolUse): void {
    this.use = use;
    if (use.targets === undefined || use.targets.length === 0) return;
    const before = this.targets;
    this.targets = use.targets;
    for (const w of this.all) w.target = Math.max(0, use.targets.findIndex((t) => t.display === before[w.target]?.display));
    // Connections opened early all went to the first server: close the idle ones beyond its share,
    // so that the cluster's nodes get theirs.
    const share = Math.ceil(this.maxWorkers / use.targets.length);
    const on = (i: number) => this.all.filter((w) => w.target === i).length;
    for (const w of [...this.idle]) {
      if (!w.adopted && on(w.target) > share) {
        this.idle.splice(this.idle.indexOf(w), 1);
        this.discardQuietly(w);
      }
    }
  }

  /** Connections opened so far. */
  get size(): number {
    return this.all.length;
  }

  /** Connections with an open transaction ('import' transactions): what a commit commits. */
  get active(): number {
    return this.all.filter((w) => w.begun).length;
  }

  /** The transactions prepare() prepared, by connection. */
  private readonly prepared = new Map<Worker, string>();

  private waiters: { resolve: (w: Worker) => void; reject: (err: unknown) => void }[] = [];

  /** The target with the fewest connections (open or opening), so a cluster's nodes share the load. */
  private nextTarget(): number {
    const used = this.targets.map((_, i) => this.all.filter((w) => w.target === i).length + (this.openingOn.get(i) ?? 0));
    return used.indexOf(Math.min(...used));
  }

  private readonly openingOn = new Map<number, number>();

  private async open(): Promise<Worker | undefined> {
    this.opening++;
    const t = this.nextTarget();
    this.openingOn.set(t, (this.openingOn.get(t) ?? 0) + 1);
    try {
      // Only the first connection waits for a busy server: past it, a full server means fewer workers.
      const first = this.all.length === 0 && this.opening === 1;
      const client = await connectClient(this.targets[t] as ConnectionTarget, 'dataio import', { retry: first });
      if (this.closed) {
        await client.end().catch(() => undefined);
        throw new DataioError('INTERNAL', 'the import pool was closed');
      }
      return this.add(client, t, false, false);
    } catch (err) {
      // Out of connection slots: carry on with what we have (warn once), unless we have none.
      const cause = err instanceof DataioError ? err.cause : err;
      if (isPgError(cause) && cause.code === '53300' && this.all.length + this.opening > 1) {
        this.maxWorkers = Math.max(1, this.all.length + this.opening - 1);
        this.o.warn(`the server has no free connections left: continuing with ${this.maxWorkers} workers`);
        return undefined;
      }
      throw err;
    } finally {
      this.opening--;
      this.openingOn.set(t, (this.openingOn.get(t) ?? 1) - 1);
    }
  }

  /** The targets (servers, or nodes of a Citus cluster) connections went to. */
  private readonly reached = new Set<string>();

  /** How many servers (Citus nodes) the pool's connections loaded batches on. */
  get nodes(): number {
    return Math.max(1, this.reached.size);
  }

  private add(client: pg.Client, target: number, adopted: boolean, begun: boolean): Worker {
    const w: Worker = { client, id: this.nextId++, target, pid: undefined, adopted, begun, broken: false, lost: false, current: undefined, copy: undefined };
    const lost = () => {
      w.lost = true;
      w.broken = true;
    };
    client.on('end', lost);
    client.on('error', lost);
    this.all.push(w);
    return w;
  }

  /** 'import' transactions: begin the connection's one transaction (and learn its server backend). */
  private async begin(w: Worker): Promise<void> {
    if (this.use.transactions !== 'import' || w.begun) return;
    // Whatever happens to the round trip, the transaction may be open: it is rolled back on abort.
    w.begun = true;
    // Behind a pooler the protocol's pid is not the server's: ask (the transaction pins the backend).
    w.pid = await beginOnServer(w.client, this.use.openSql);
  }

  /**
   * Use a connection the caller opened (the job's own, when one connection does everything: a small
   * input then costs one connection, not two), in the transaction the caller began on it. The pool
   * never closes it.
   */
  adopt(client: pg.Client): void {
    this.release(this.add(client, 0, true, true));
  }

  /**
   * Start opening connections now, in the background, up to `upTo` of them (all by default), so that
   * they are ready when the batches come. A failure goes to a batch waiting for a connection, if one
   * is; else a batch that needs a connection later opens one again (and meets the failure itself).
   */
  prewarm(upTo = this.maxWorkers): void {
    while (this.all.length + this.opening < Math.min(upTo, this.maxWorkers)) {
      this.open().then(
        (w) => {
          if (w === undefined) return;
          if (w.broken || this.closed || this.all.length > this.maxWorkers) this.discardQuietly(w);
          else this.release(w);
        },
        (err: unknown) => this.waiters.shift()?.reject(err),
      );
    }
  }

  /** Use at most n connections (fewer than the pool was made for): idle ones beyond n are closed. */
  limit(n: number): void {
    this.maxWorkers = Math.max(1, n);
    while (this.all.length > this.maxWorkers && this.idle.length > 0) this.discardQuietly(this.idle.pop() as Worker);
  }

  /** Connections open or being opened. */
  get claimed(): number {
    return this.all.length + this.opening;
  }

  private discardQuietly(w: Worker): void {
    const i = this.all.indexOf(w);
    if (i !== -1) this.all.splice(i, 1);
    if (!w.adopted) void w.client.end().catch(() => undefined);
  }

  /**
   * A free connection: the last one back, or (`oldest`) the one idle longest: a batch sent into a COPY
   * that stays open is taken by the kernel at once, and the last one back would get every batch while
   * the other connections wait (measured: 300 small files, 2 workers, all 24 batches on one connection).
   */
  private async acquire(oldest = false): Promise<Worker> {
    const w = oldest ? this.idle.shift() : this.idle.pop();
    if (w) return w;
    if (this.all.length + this.opening < this.maxWorkers) {
      const fresh = await this.open();
      if (fresh) return fresh;
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private release(w: Worker): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(w);
    else this.idle.push(w);
  }

  /**
   * Run `work` on a free connection for `batch`. When it fails the connection is marked broken; in
   * 'batch' mode a broken connection is closed and a fresh one opened for the next batch. A failure on
   * a connection that ended is a lost connection, marked transient (worth another try).
   */
  async run<T>(batch: CopyWorkerBatch, work: (client: pg.Client, pid: number | undefined) => Promise<T>): Promise<T> {
    const w = await this.acquire();
    w.current = batch;
    this.reached.add(this.targets[w.target]?.display ?? String(w.target));
    try {
      await this.begin(w);
      // A COPY it keeps open (streamed batches) must end before anything else runs there.
      await this.endCopy(w);
      return await work(w.client, w.pid);
    } catch (err) {
      throw this.failedOn(w, err);
    } finally {
      w.current = undefined;
      if (w.broken && this.use.transactions === 'batch') this.discard(w);
      else this.release(w);
    }
  }

  /** A connection's work failed: it is broken; a failure of a connection that ended is a lost connection (transient). */
  private failedOn(w: Worker, err: unknown): unknown {
    w.broken = true;
    if (w.lost && !isPgError(err) && !isPgError((err as { failure?: unknown } | null)?.failure)) {
      return new DataioError('DB_UNREACHABLE', `lost the connection to the server (${(err as Error).message})`, { cause: err, transient: true });
    }
    return err;
  }

  /** Rows of the streamed COPYs that ended, and what to tell of a streamed COPY's failure. */
  private streamedRows = 0;
  private copyFailed: ((err: unknown) => void) | undefined;

  /**
   * 'import' transactions: send `batch` into the COPY its connection keeps open (streamed-copy.ts),
   * opening one with `sql` when the connection has none or its COPY cannot take this batch. Resolves
   * once the batch's bytes are with the kernel (its read buffers may be reused), not when the server
   * has loaded them: a failure found later goes to onCopyFailure's listener, and to endCopies().
   */
  async stream(batch: CopyWorkerBatch, sql: string, lines: StreamLines): Promise<void> {
    const w = await this.acquire(true);
    w.current = batch;
    this.reached.add(this.targets[w.target]?.display ?? String(w.target));
    try {
      await this.begin(w);
      if (w.copy !== undefined && !w.copy.accepts(lines.group)) await this.endCopy(w);
      if (w.copy === undefined) {
        const copy = new StreamedCopy<CopyWorkerBatch>(w.client, sql, lines.group);
        w.copy = copy;
        copy.finished.then(
          () => undefined,
          (err: unknown) => this.copyFailed?.(this.failedOn(w, err)),
        );
      }
      await w.copy.send(batch, lines);
      if (w.copy.closed) await this.endCopy(w);
    } catch (err) {
      throw this.failedOn(w, err);
    } finally {
      w.current = undefined;
      this.release(w);
    }
  }

  /** Be told at once when a streamed COPY fails (not only when the next batch is sent to it, or at the end). */
  onCopyFailure(listener: (err: unknown) => void): void {
    this.copyFailed = listener;
  }

  private async endCopy(w: Worker): Promise<void> {
    const copy = w.copy;
    if (copy === undefined) return;
    w.copy = undefined;
    // Not `+= await`: that would read the sum before the wait, and COPYs end at once.
    const rows = await copy.end();
    this.streamedRows += rows;
  }

  /** End every open streamed COPY; resolves to the rows all of the streamed COPYs loaded. */
  async endCopies(): Promise<number> {
    const results = await Promise.allSettled(this.all.map((w) => this.endCopy(w).catch((err: unknown) => Promise.reject(this.failedOn(w, err)))));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return this.streamedRows;
  }

  /** Give up every open streamed COPY (CopyFail): after a failure, before the transactions are rolled back. */
  abortCopies(message: string): void {
    for (const w of this.all) {
      w.copy?.abort(message);
      w.copy = undefined;
    }
  }

  /** Close a failed connection and hand its place to a waiter as a fresh one. */
  private discard(w: Worker): void {
    this.discardQuietly(w);
    const waiter = this.waiters.shift();
    if (waiter) {
      this.open().then(
        (fresh) => (fresh ? waiter.resolve(fresh) : this.waiters.unshift(waiter)),
        (err: unknown) => waiter.reject(err),
      );
    }
  }

  /**
   * Server process ids of the pool's connections ('import' transactions), with the batch each is
   * loading now: not for a COPY that batches share, whose server may still be on any batch sent before.
   */
  backends(): { pid: number; batch: CopyWorkerBatch | undefined }[] {
    return this.all.flatMap((w) => (w.pid === undefined ? [] : [{ pid: w.pid, batch: w.copy === undefined ? w.current : undefined }]));
  }

  /**
   * PREPARE every connection's transaction under the name `gid(worker)`. When one fails, rejects with
   * that failure and a `prepared` list on it (the names that were prepared), so the caller can roll
   * those back.
   */
  async prepare(gid: (worker: number) => string): Promise<void> {
    const results = await Promise.allSettled(
      this.all.filter((w) => w.begun).map(async (w) => {
        await w.client.query(`PREPARE TRANSACTION ${quoteLiteral(gid(w.id))}`);
        this.prepared.set(w, gid(w.id));
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw Object.assign(failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason)), { prepared: [...this.prepared.values()] });
  }

  /**
   * COMMIT PREPARED each connection's own prepared transaction on that connection, all at once (their
   * WAL flushes share one fsync); resolves to the names that could not be committed this way (a lost
   * connection), for the caller to commit from elsewhere.
   */
  async commitPrepared(): Promise<string[]> {
    // Only the connections prepare() prepared: one that finished opening since has nothing to commit.
    const prepared = [...this.prepared];
    const results = await Promise.allSettled(prepared.map(([w, gid]) => w.client.query(`COMMIT PREPARED ${quoteLiteral(gid)}`)));
    return prepared.flatMap(([, gid], i) => (results[i]?.status === 'rejected' ? [gid] : []));
  }

  /** Commit every connection's transaction. */
  async commit(): Promise<void> {
    for (const w of this.all) if (w.begun) await w.client.query('COMMIT');
  }

  /** Roll back every connection (best effort: a lost connection rolls back by itself). */
  async rollback(): Promise<void> {
    await Promise.all(this.all.filter((w) => w.begun).map((w) => w.client.query('ROLLBACK').catch(() => undefined)));
  }

  /** Close the connections the pool opened, without waiting for their backends to exit (hangUp). */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.all) if (!w.adopted) hangUp(w.client);
  }
}

/**
 * A bounded pool of COPY connections for an all-or-nothing import. Each connection holds one
 * transaction for all the batches it loads (no savepoints: a savepoint per batch would overflow the
 * backend's 64-entry subtransaction cache on a long import and slow every other session). Nothing is
 * visible until finish() commits every connection; abort() rolls them all back.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { connectClient, type ConnectionTarget } from '../pg/connect.js';
import { DataioError } from '../errors.js';
import { quoteLiteral } from '../pg/ident.js';
import { isPgError } from '../pg/pg-errors.js';

export interface CopyWorkerBatch {
  chunks: Buffer[];
  firstLine: number;
}

interface Worker {
  client: pg.Client;
  id: number;
  broken: boolean;
  /** The batch this connection is loading now, if any. */
  current: CopyWorkerBatch | undefined;
}

export interface CopyPoolOptions {
  target: ConnectionTarget;
  maxWorkers: number;
  copySql: string;
  /** Run on each new connection inside its transaction, before its first COPY. */
  sessionSql?: string[];
  warn(message: string): void;
}

export class CopyPool {
  private readonly o: CopyPoolOptions;
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private maxWorkers: number;
  private opening = 0;
  private closed = false;

  constructor(o: CopyPoolOptions) {
    this.o = o;
    this.maxWorkers = Math.max(1, o.maxWorkers);
  }

  /** Connections opened so far. */
  get size(): number {
    return this.all.length;
  }

  private waiters: ((w: Worker) => void)[] = [];

  private async open(): Promise<Worker | undefined> {
    this.opening++;
    try {
      // Only the first connection waits for a busy server: past it, a full server means fewer workers.
      const client = await connectClient(this.o.target, 'dataio import', { retry: this.all.length === 0 });
      const w: Worker = { client, id: this.all.length, broken: false, current: undefined };
      this.all.push(w);
      try {
        await client.query('BEGIN');
        for (const sql of this.o.sessionSql ?? []) await client.query(sql);
      } catch (err) {
        w.broken = true;
        throw err;
      }
      if (this.closed) throw new DataioError('INTERNAL', 'the import pool was closed');
      return w;
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
    }
  }

  private async acquire(): Promise<Worker> {
    const w = this.idle.pop();
    if (w) return w;
    if (this.all.length + this.opening < this.maxWorkers) {
      const fresh = await this.open();
      if (fresh) return fresh;
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(w: Worker): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(w);
    else this.idle.push(w);
  }

  /** COPY one batch on a free connection (inside that connection's transaction); returns its rows. */
  async copy(batch: CopyWorkerBatch): Promise<number> {
    const w = await this.acquire();
    w.current = batch;
    try {
      const stream = w.client.query(copyFrom(this.o.copySql));
      // pipeline: an error on either side destroys the copy stream, which sends CopyFail.
      await pipeline(Readable.from(batch.chunks, { objectMode: false }), stream);
      return stream.rowCount;
    } catch (err) {
      w.broken = true;
      throw err;
    } finally {
      w.current = undefined;
      this.release(w);
    }
  }

  /** Server process ids of the pool's connections, with the batch each is loading now. */
  backends(): { pid: number; batch: CopyWorkerBatch | undefined }[] {
    return this.all.map((w) => ({ pid: (w.client as unknown as { processID: number }).processID, batch: w.current }));
  }

  /**
   * PREPARE every connection's transaction under the name `gid(worker)`. Resolves to the names that
   * were prepared; when one fails, rejects with that failure and a `prepared` list on it, so the caller
   * can roll those back.
   */
  async prepare(gid: (worker: number) => string): Promise<string[]> {
    const results = await Promise.allSettled(
      this.all.map(async (w) => {
        await w.client.query(`PREPARE TRANSACTION ${quoteLiteral(gid(w.id))}`);
        return gid(w.id);
      }),
    );
    const prepared = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw Object.assign(failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason)), { prepared });
    return prepared;
  }

  /** Commit every connection's transaction. */
  async commit(): Promise<void> {
    for (const w of this.all) await w.client.query('COMMIT');
  }

  /** Roll back every connection (best effort: a lost connection rolls back by itself). */
  async rollback(): Promise<void> {
    await Promise.all(this.all.map((w) => w.client.query('ROLLBACK').catch(() => undefined)));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.all.map((w) => w.client.end().catch(() => undefined)));
  }
}

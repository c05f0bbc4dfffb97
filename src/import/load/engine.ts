/**
 * The loading engine shared by every input format: batches go to a p-limit bounded pool of COPY
 * connections with at most `maxInFlight` batches in memory, the first failure stops the feed, and a
 * watcher turns an endless wait between two of our own connections into an error.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import type pg from 'pg';
import { DataioError } from '../../errors.js';
import type { CopyPool } from './copy-pool.js';
import type { BatchOutcome, LoadableBatch } from './batch-load.js';
import { cancelBackend, siblingWaits } from './sibling-wait.js';
import { StreamedCopyError } from './streamed-copy.js';

export type EngineBatch = LoadableBatch;

export interface EngineOptions<B extends EngineBatch> {
  pool: CopyPool;
  /** Load one batch (on a connection of the pool). */
  load(batch: B): Promise<BatchOutcome>;
  /**
   * A row waiting on a row another worker loaded, in an import whose transactions stay open to the
   * end: 'fail' the import, 'cancel' that row's COPY (skip mode rejects the row; the backend goes in
   * `cancelled`), or 'off' (per-batch commits: such waits end by themselves).
   */
  siblingWaits: 'fail' | 'cancel' | 'off';
  cancelled: Set<number>;
  workers: number;
  maxInFlight: number;
  /** A connection of our own, idle during the load, for the wait watcher. */
  monitor: pg.Client;
  /** What we are doing, for messages: "import into t". */
  action: string;
  /** When aborted, no further batch is sent and the load fails with INTERRUPTED. */
  signal?: AbortSignal;
  onLoaded(batch: B, outcome: BatchOutcome): void | Promise<void>;
  /** Turn a batch's failure into the error the user sees (naming the input line). */
  mapError(err: unknown, batch: B): DataioError;
  /**
   * The batches were streamed into COPYs the pool keeps open (CopyPool.stream): once every batch is
   * sent they are ended, and this is told the rows they loaded; after a failure they are given up.
   */
  streamed?: { loaded(rows: number): void };
}

/** Load every batch; resolves when all are in (uncommitted), rejects with the first failure. */
export async function loadBatches<B extends EngineBatch>(batches: AsyncIterable<B>, o: EngineOptions<B>): Promise<void> {
  const limit = pLimit(o.workers);
  const inflight = new Set<Promise<void>>();
  let failure: DataioError | undefined;
  const fail = (err: DataioError) => {
    failure ??= err;
  };
  const watcher = o.siblingWaits === 'off' ? { stop: async () => undefined } : watchSiblingWaits(o, fail);
  const interrupted = () => fail(new DataioError('INTERRUPTED', `${o.action} interrupted`));
  o.signal?.addEventListener('abort', interrupted, { once: true });
  // A streamed COPY's failure names the batch that held the failing line, not the one being sent.
  const mapped = (err: unknown, batch: B) => (err instanceof StreamedCopyError ? copyFailure(o, err) : o.mapError(err, batch));
  if (o.streamed !== undefined) o.pool.onCopyFailure((err) => fail(copyFailure(o, err)));
  try {
    for await (const batch of batches) {
      if (failure !== undefined) break;
      while (inflight.size >= o.maxInFlight) await Promise.race(inflight);
      if (failure !== undefined) break;
      // A batch still queued when another failed is not started (resumable mode would commit it).
      // The failure is noted before the slot is free: the next batch in the queue sees it.
      const p: Promise<void> = limit(async () => {
        if (failure !== undefined) return;
        try {
          await o.onLoaded(batch, await o.load(batch));
          // The batch is in and its outcome handled: its read buffers can be reused. A failed batch is
          // never released (its bytes may still be queued on a broken connection); the GC takes it.
          batch.release?.();
        } catch (err) {
          fail(mapped(err, batch));
        }
      });
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
  } catch (err) {
    // The input failed, or was closed because of the interrupt: the first failure is the one to tell.
    fail(err instanceof DataioError ? err : new DataioError('INPUT_READ', (err as Error).message, { cause: err }));
  } finally {
    await Promise.all(inflight);
    if (o.streamed !== undefined) await endCopies(o, fail, failure !== undefined);
    await watcher.stop();
    o.signal?.removeEventListener('abort', interrupted);
  }
  if (failure !== undefined) throw failure;
}

/** Streamed: end the open COPYs (the watcher still watches: an end may wait on a sibling's row), or give them up after a failure. */
async function endCopies<B extends EngineBatch>(o: EngineOptions<B>, fail: (err: DataioError) => void, failed: boolean): Promise<void> {
  if (failed) {
    o.pool.abortCopies(`${o.action} failed`);
    return;
  }
  try {
    o.streamed?.loaded(await o.pool.endCopies());
  } catch (err) {
    fail(copyFailure(o, err));
  }
}

/** A streamed COPY's failure, found apart from any batch being sent: it names the batch itself. */
function copyFailure<B extends EngineBatch>(o: EngineOptions<B>, err: unknown): DataioError {
  if (err instanceof StreamedCopyError) return o.mapError(err.failure, err.batch as B);
  return err instanceof DataioError ? err : new DataioError('DB_ERROR', `${o.action} failed: ${(err as Error).message}`, { cause: err });
}

/**
 * In an all-or-nothing import every connection keeps its transaction open until the end, so when a
 * row on one connection waits on a row another connection of the same import inserted (a duplicate
 * unique key, or a foreign key to a row of this import), it waits for a commit that can only come
 * after it finishes. PostgreSQL's deadlock detector cannot see this cycle (it passes through the
 * client), so we look for it every second and fail the import rather than hang.
 */
function watchSiblingWaits<B extends EngineBatch>(o: EngineOptions<B>, fail: (err: DataioError) => void): { stop(): Promise<void> } {
  const { monitor: client, pool, action } = o;
  const ac = new AbortController();
  const loop = (async () => {
    // Seen on two checks in a row: a wait on a sibling's transaction only ends with the import.
    let seen = new Set<string>();
    for (;;) {
      try {
        await sleep(1000, undefined, { signal: ac.signal });
      } catch {
        return;
      }
      const backends = pool.backends();
      const waits = await siblingWaits(client, backends.map((b) => b.pid));
      const keys = new Set(waits.map((x) => `${x.waiter}:${x.blocker}`));
      const w = waits.find((x) => seen.has(`${x.waiter}:${x.blocker}`));
      seen = keys;
      if (w === undefined) continue;
      if (o.siblingWaits === 'cancel') {
        // Skip mode: the waiting row is rejected (its COPY fails with "canceling statement").
        o.cancelled.add(w.waiter);
        await cancelBackend(client, w.waiter);
        seen.clear();
        continue;
      }
      const batch = backends.find((b) => b.pid === w.waiter)?.batch;
      const where = batch ? ` in the batch that starts at input line ${batch.firstLine}` : '';
      fail(
        new DataioError(
          'DATA_ERROR',
          `${action} failed${where}: a row waits on a row loaded by another worker of this import (a duplicate unique key, or a foreign key to a row of this import)`,
          { hint: 'look for duplicate keys in the input; --workers 1 names the exact line' },
        ),
      );
      await cancelBackend(client, w.waiter);
      return;
    }
  })();
  return {
    stop: async () => {
      ac.abort();
      await loop.catch(() => undefined);
    },
  };
}

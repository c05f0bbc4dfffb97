/**
 * The loading engine shared by every input format: batches go to a p-limit bounded pool of COPY
 * connections with at most `maxInFlight` batches in memory, the first failure stops the feed, and a
 * watcher turns an endless wait between two of our own connections into an error.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import type pg from 'pg';
import { DataioError } from '../errors.js';
import type { CopyPool, CopyWorkerBatch } from './copy-pool.js';
import { cancelBackend, siblingWaits } from './sibling-wait.js';

export interface EngineBatch extends CopyWorkerBatch {
  bytes: number;
  /** Called once the batch is loaded and will never be read again (its read buffers can be reused). */
  release?: () => void;
}

export interface EngineOptions<B extends EngineBatch> {
  pool: CopyPool;
  workers: number;
  maxInFlight: number;
  /** A connection of our own, idle during the load, for the wait watcher. */
  monitor: pg.Client;
  /** What we are doing, for messages: "import into t". */
  action: string;
  /** When aborted, no further batch is sent and the load fails with INTERRUPTED. */
  signal?: AbortSignal;
  onLoaded(batch: B, rows: number): void;
  /** Turn a batch's failure into the error the user sees (naming the input line). */
  mapError(err: unknown, batch: B): DataioError;
}

/** Load every batch; resolves when all are in (uncommitted), rejects with the first failure. */
export async function loadBatches<B extends EngineBatch>(batches: AsyncIterable<B>, o: EngineOptions<B>): Promise<void> {
  const limit = pLimit(o.workers);
  const inflight = new Set<Promise<void>>();
  let failure: DataioError | undefined;
  const fail = (err: DataioError) => {
    failure ??= err;
  };
  const watcher = watchSiblingWaits(o.monitor, o.pool, fail, o.action);
  const interrupted = () => fail(new DataioError('INTERRUPTED', `${o.action} interrupted: everything it loaded was rolled back`));
  o.signal?.addEventListener('abort', interrupted, { once: true });
  try {
    for await (const batch of batches) {
      if (failure !== undefined) break;
      while (inflight.size >= o.maxInFlight) await Promise.race(inflight);
      if (failure !== undefined) break;
      const p: Promise<void> = limit(() => o.pool.copy(batch)).then(
        (rows) => {
          o.onLoaded(batch, rows);
          // The COPY ended, so every byte was sent: the memory can be reused. A failed batch is never
          // released (its bytes may still be queued on a broken connection); the GC takes it.
          batch.release?.();
        },
        (err: unknown) => fail(o.mapError(err, batch)),
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
  } catch (err) {
    // The input failed, or was closed because of the interrupt: the first failure is the one to tell.
    fail(err instanceof DataioError ? err : new DataioError('INPUT_READ', (err as Error).message, { cause: err }));
  } finally {
    await Promise.all(inflight);
    await watcher.stop();
    o.signal?.removeEventListener('abort', interrupted);
  }
  if (failure !== undefined) throw failure;
}

/**
 * In an all-or-nothing import every connection keeps its transaction open until the end, so when a
 * row on one connection waits on a row another connection of the same import inserted (a duplicate
 * unique key, or a foreign key to a row of this import), it waits for a commit that can only come
 * after it finishes. PostgreSQL's deadlock detector cannot see this cycle (it passes through the
 * client), so we look for it every second and fail the import rather than hang.
 */
function watchSiblingWaits(client: pg.Client, pool: CopyPool, fail: (err: DataioError) => void, action: string): { stop(): Promise<void> } {
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

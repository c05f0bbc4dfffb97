/**
 * Running many `COPY … TO STDOUT` parts over several connections and writing their bytes strictly
 * in part order: the engine under a parallel export, whether the parts are ctid ranges of one table
 * (parallel.ts) or the shards of a Citus table on its nodes (citus.ts).
 *
 * Connections come in lanes: a part names the lane that can run it (a Citus shard only on the node
 * that holds it; a ctid range on any connection of the one lane). A free connection takes its lane's
 * next part in part order. At most 2 × connections parts are started but not yet written, and each
 * buffers at most `highWaterMark` bytes before its COPY waits (backpressure reaches the server), so
 * memory stays bounded whatever the table's size. Parts of one lane are taken in ascending order, so
 * the part the writer waits for is always started (or done) when a later one of its lane is: no
 * lane can sit on the window while the writer starves.
 */
import type pg from 'pg';
import { CopyOut, type RowTally } from './copy-out.js';
import type { RowShaper } from './copy-out-parser.js';

export interface CopyPart {
  /** The COPY … TO STDOUT statement. */
  sql: string;
  /** Index of the lane (group of connections) that can run it. */
  lane: number;
}

export interface OrderedCopyOptions {
  shaper: () => RowShaper;
  tally: RowTally;
  /** Bytes a part may buffer before its COPY waits. */
  highWaterMark: number;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * Run `parts` over the connections of `lanes` (lanes[i] runs the parts with lane i); `consume` gets
 * the bytes in part order and must write them all. Resolves to the rows written. The caller owns the
 * connections and must close them after a failure (a COPY left waiting for its reader ends only so);
 * it resolves only once every connection's work has ended.
 */
export async function copyInOrder(
  lanes: pg.Client[][],
  parts: CopyPart[],
  o: OrderedCopyOptions,
  consume: (chunks: AsyncIterable<Buffer>) => Promise<void>,
  closeAll: () => Promise<void>,
): Promise<number> {
  const queues = lanes.map((_, lane) => parts.flatMap((p, k) => (p.lane === lane ? [k] : [])));
  const cursors = lanes.map(() => ({ next: 0 }));
  const connections = lanes.reduce((n, l) => n + l.length, 0);
  const window = 2 * connections;
  const started = parts.map(() => deferred<CopyOut>());
  const active = new Set<CopyOut>();
  const waiting: (() => void)[] = [];
  const wakeAll = () => waiting.splice(0).forEach((w) => w());
  let written = 0;
  let failure: Error | undefined;
  const fail = (err: unknown) => {
    failure ??= err instanceof Error ? err : new Error(String(err));
    for (const d of started) d.reject(failure);
    for (const c of active) c.destroy(failure);
    wakeAll();
  };
  for (const [lane, queue] of queues.entries()) {
    if (queue.length > 0 && (lanes[lane]?.length ?? 0) === 0) fail(new Error(`copyInOrder: lane ${lane} has parts but no connection`));
  }

  const work = async (client: pg.Client, lane: number) => {
    const queue = queues[lane] as number[];
    const cursor = cursors[lane] as { next: number };
    for (;;) {
      const k = queue[cursor.next++];
      if (k === undefined) return;
      while (k >= written + window && failure === undefined) await new Promise<void>((r) => waiting.push(r));
      if (failure !== undefined) return;
      const copy = new CopyOut((parts[k] as CopyPart).sql, o.shaper(), o.tally, o.highWaterMark);
      // Its failure may come before the writer reads it: the writer gets it from the stream's state
      // and from `finished`, so an 'error' event with no one listening must not crash the process.
      copy.on('error', () => undefined);
      active.add(copy);
      client.query(copy);
      (started[k] as Deferred<CopyOut>).resolve(copy);
      try {
        // The connection is free for the next part once the server has sent the whole part.
        await copy.finished;
      } finally {
        active.delete(copy);
      }
    }
  };
  const settled = lanes.flatMap((clients, lane) => clients.map((c) => work(c, lane).catch(fail)));

  let rows = 0;
  async function* inOrder(): AsyncGenerator<Buffer> {
    for (const d of started) {
      const copy = await d.promise;
      yield* copy;
      rows += await copy.finished;
      written++;
      wakeAll();
    }
  }
  try {
    await consume(inOrder());
  } catch (err) {
    fail(err);
    // Closing a connection whose COPY still runs (a failure, a reader gone) cuts it off at the server.
    await closeAll();
    await Promise.allSettled(settled);
    throw failure;
  }
  await Promise.allSettled(settled);
  return rows;
}

/**
 * Bounded concurrency for chunk transfers, so memory stays O(workers × chunk size) whatever the
 * document's size: uploads run in a window of at most `limit` tasks, and downloads are fetched ahead
 * at most `ahead` results, handed out in order.
 */

/**
 * Runs tasks at most `limit` at a time. add() waits while the window is full, which is what stops the
 * reader from running ahead of the uploads. The first failure stops new tasks and is rethrown.
 */
export class TaskWindow {
  private readonly running = new Set<Promise<void>>();
  private failure: { err: unknown } | undefined;

  constructor(private readonly limit: number) {}

  async add(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.limit && this.failure === undefined) await Promise.race(this.running);
    if (this.failure !== undefined) throw this.failure.err;
    const p: Promise<void> = task()
      .catch((err: unknown) => {
        this.failure ??= { err };
      })
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  /** Wait for every task; throws the first failure. */
  async drain(): Promise<void> {
    await Promise.all([...this.running]);
    if (this.failure !== undefined) throw this.failure.err;
  }

  /** On the way out after an error: let tasks in flight end before their connections are closed. */
  async settle(): Promise<void> {
    await Promise.all([...this.running]);
  }
}

/**
 * Yields fetch(0) … fetch(count - 1) in order while keeping up to `ahead` of them in flight.
 * Results that arrive early wait in memory, so `ahead` bounds memory too.
 */
export async function* fetchAhead<T>(count: number, ahead: number, fetch: (index: number) => Promise<T>): AsyncGenerator<T> {
  const queue: Promise<T>[] = [];
  let next = 0;
  const refill = () => {
    while (next < count && queue.length < ahead) {
      const p = fetch(next++);
      // Mark it handled now: it may fail before we get round to awaiting it, and an unhandled
      // rejection would end the process. The error still surfaces at the await below.
      p.catch(() => undefined);
      queue.push(p);
    }
  };
  try {
    refill();
    for (;;) {
      const head = queue.shift();
      if (head === undefined) return;
      const value = await head;
      refill();
      yield value;
    }
  } finally {
    // Stopped early (an error, or the reader went away): let fetches in flight end first.
    await Promise.allSettled(queue);
  }
}

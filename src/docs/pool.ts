/**
 * A small pool of connections for chunk transfers: up to `size` clients, opened as work arrives,
 * each used by one task at a time. The callers bound how many tasks they start, so no queue grows
 * without limit here. Connections keep no session state (no SET, no named statement): behind a
 * transaction pooler the next transaction may run on another server connection.
 */
import type pg from 'pg';
import { connectClient, hangUp, type ConnectionTarget } from '../pg/connect.js';

export class ClientPool {
  private readonly idle: pg.Client[] = [];
  private readonly all: pg.Client[] = [];
  private readonly waiters: ((c: pg.Client) => void)[] = [];
  private opening = 0;

  constructor(
    private readonly target: ConnectionTarget,
    private readonly size: number,
    private readonly applicationName: string,
  ) {}

  /** Connections opened so far. */
  get opened(): number {
    return this.all.length;
  }

  async use<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = await this.acquire();
    try {
      return await fn(client);
    } finally {
      this.release(client);
    }
  }

  private async acquire(): Promise<pg.Client> {
    const ready = this.idle.pop();
    if (ready !== undefined) return ready;
    if (this.all.length + this.opening < this.size) {
      this.opening++;
      try {
        const client = await connectClient(this.target, this.applicationName);
        this.all.push(client);
        return client;
      } finally {
        this.opening--;
      }
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(client: pg.Client): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter(client);
    else this.idle.push(client);
  }

  async close(): Promise<void> {
    // Without waiting for the backends to exit (hangUp).
    for (const c of this.all) hangUp(c);
  }
}

/**
 * `COPY … TO STDOUT` as a Readable of the rows' bytes, submitted to a pg.Client like any query.
 *
 * While the COPY runs, this takes the connection's socket from pg's protocol parser (as
 * pg-copy-streams' copy-to does) and parses the bytes itself (copy-out-parser.ts); when the data ends
 * it hands the rest (CommandComplete, ReadyForQuery, or an ErrorResponse) back to pg. Backpressure is
 * real: when the reader is slow, the socket is not read, and the server waits.
 */
import { Readable } from 'node:stream';
import type { Connection, Submittable } from 'pg';
import { CopyOutParser, type RowShaper } from './copy-out-parser.js';

/** Rows seen so far, shared by every COPY of one export (progress). */
export interface RowTally {
  rows: number;
}

type DataListener = (chunk: Buffer) => void;

/**
 * Errors that came from the server or the connection during a COPY. A pipeline hands its first error
 * to every stream in it, the output too, so the output's 'error' event alone cannot say who failed.
 */
const copyErrors = new WeakSet<object>();

export function isCopyError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && copyErrors.has(err);
}

export class CopyOut extends Readable implements Submittable {
  readonly sql: string;
  /** Settles when the server has ended the COPY: with the row count of its CommandComplete. */
  readonly finished: Promise<number>;
  private readonly parser: CopyOutParser;
  private readonly tally: RowTally;
  private rowCount = 0;
  private socket: Connection['stream'] | undefined;
  private pgListener: DataListener | undefined;
  private wanted = false;
  private forwarding = false;
  private settle: { resolve(n: number): void; reject(err: unknown): void } | undefined;
  private readonly onReadable = () => this.forward();

  constructor(sql: string, shaper: RowShaper, tally: RowTally, highWaterMark: number) {
    super({ highWaterMark });
    this.sql = sql;
    this.parser = new CopyOutParser(shaper);
    this.tally = tally;
    this.finished = new Promise<number>((resolve, reject) => (this.settle = { resolve, reject }));
    // Whoever awaits `finished` sees the failure; the stream carries it too. Never unhandled.
    this.finished.catch(() => undefined);
  }

  submit(connection: Connection): void {
    const socket = connection.stream;
    const listeners = socket.listeners('data') as DataListener[];
    if (listeners.length !== 1) throw new Error(`CopyOut: expected pg's one data listener on the socket, found ${listeners.length}`);
    this.socket = socket;
    this.pgListener = listeners[0];
    socket.removeListener('data', this.pgListener as DataListener);
    socket.pause();
    socket.on('readable', this.onReadable);
    connection.query(this.sql);
  }

  override _read(): void {
    this.wanted = true;
    this.forward();
  }

  private forward(): void {
    const socket = this.socket;
    if (this.forwarding || !this.wanted || socket === undefined) return;
    this.forwarding = true;
    let chunk: Buffer | null;
    while (this.wanted && this.socket !== undefined && (chunk = socket.read() as Buffer | null) !== null) {
      const step = this.parser.push(chunk);
      this.tally.rows += step.rows;
      if (step.output !== null) this.wanted = this.push(step.output);
      if (step.rest !== undefined) {
        this.detach(step.rest);
        if (step.done === true) this.push(null);
      }
    }
    this.forwarding = false;
  }

  /** Give the socket back to pg, with the bytes it must parse first. */
  private detach(rest: Buffer): void {
    const socket = this.socket;
    const pgListener = this.pgListener;
    if (socket === undefined || pgListener === undefined) return;
    this.socket = undefined;
    socket.removeListener('readable', this.onReadable);
    socket.on('data', pgListener);
    if (rest.length > 0) pgListener(rest);
    // Removing the 'readable' listener leaves the socket paused; resume it once pg's handler is back
    // (pg-copy-streams does the same, for the same reason).
    process.nextTick(() => socket.resume());
  }

  // The pg.Client calls these (Submittable's informal protocol).
  handleCommandComplete(msg: { text?: string } | undefined): void {
    const m = /^COPY (\d+)/.exec(msg?.text ?? '');
    if (m) this.rowCount = Number(m[1]);
  }

  handleReadyForQuery(): void {
    this.settle?.resolve(this.rowCount);
  }

  handleError(err: unknown): void {
    // A lost connection, or an ErrorResponse (which pg has parsed from the bytes handed back).
    if (this.socket !== undefined) this.detach(Buffer.alloc(0));
    const error = err instanceof Error ? err : new Error(String(err));
    copyErrors.add(error);
    this.settle?.reject(error);
    this.destroy(error);
  }
}

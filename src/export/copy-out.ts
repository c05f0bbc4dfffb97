/**
 * `COPY … TO STDOUT` as a Readable of the rows' bytes, submitted to a pg.Client like any query.
 *
 * While the COPY runs, this takes the connection's socket from pg's protocol parser (as
 * pg-copy-streams' copy-to does) and parses the bytes itself (copy-out-parser.ts); when the data ends
 * it hands the rest (CommandComplete, ReadyForQuery, or an ErrorResponse) back to pg. Backpressure is
 * real: when the reader is slow, the socket is paused, and the server waits.
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
  /** We paused the socket because the reader is behind. */
  private paused = false;
  private settle: { resolve(n: number): void; reject(err: unknown): void } | undefined;
  private readonly onData: DataListener = (chunk) => this.receive(chunk);

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
    // The socket stays in flowing mode, paused only while the reader is behind: reading it in paused
    // mode ('readable' + read(), as pg-copy-streams does) stops and restarts the kernel reads for every
    // chunk, which cost measurable system time here.
    socket.removeListener('data', this.pgListener as DataListener);
    socket.on('data', this.onData);
    connection.query(this.sql);
  }

  override _read(): void {
    if (this.paused && this.socket !== undefined) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private receive(chunk: Buffer): void {
    const step = this.parser.push(chunk);
    this.tally.rows += step.rows;
    const more = step.output === null || this.push(step.output);
    if (step.rest !== undefined) {
      this.detach(step.rest);
      if (step.done === true) this.push(null);
    } else if (!more && this.socket !== undefined) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** Give the socket back to pg, with the bytes it must parse first. */
  private detach(rest: Buffer): void {
    const socket = this.socket;
    const pgListener = this.pgListener;
    if (socket === undefined || pgListener === undefined) return;
    this.socket = undefined;
    socket.removeListener('data', this.onData);
    socket.on('data', pgListener);
    if (rest.length > 0) pgListener(rest);
    if (this.paused) {
      this.paused = false;
      socket.resume();
    }
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

/**
 * `COPY … FROM STDIN` as a node-postgres submittable that stays open while the caller sends it batch
 * after batch, so that a connection loading many batches runs one COPY, as `psql \copy` does, instead
 * of one per batch (each cost a round trip and the server's start of a new COPY: about 2.3 ms a batch
 * here, 45 ms per worker over a 2M-row import).
 *
 * send() writes the chunks as CopyData messages, corked (a message's 5-byte header and its data go to
 * the kernel in one writev, not in a write each), and resolves once the socket has handed every byte to
 * the kernel: only then may the caller reuse the chunks' memory (read buffers), because until then the
 * socket may still hold pointers into it. end() sends CopyDone and resolves to the rows the COPY
 * loaded; abort() sends CopyFail. A server error ends the COPY: it rejects the end and every later send
 * (PostgreSQL ignores the CopyData that was already on its way).
 *
 * pg-copy-streams (which the per-batch path uses) writes each chunk as a write of its own and reports
 * a chunk written as soon as the socket buffered it, which is not enough to reuse the memory.
 */
import type { Socket } from 'node:net';

/** The little of node-postgres' Connection used here. */
interface Connection {
  stream: Socket;
  query(text: string): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
}

const COPY_DATA = 0x64;

/** The header of a CopyData message carrying `length` bytes. */
export function copyDataHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(5);
  header[0] = COPY_DATA;
  header.writeUInt32BE(length + 4, 1);
  return header;
}

/** The row count of a COPY's CommandComplete tag ("COPY 123"); 0 when there is none. */
export function copyRowCount(tag: string | undefined): number {
  const m = /^COPY (\d+)$/.exec(tag ?? '');
  return m === null ? 0 : Number.parseInt(m[1] as string, 10);
}

export class CopyIn {
  readonly text: string;
  private connection: Connection | undefined;
  private rows = 0;
  private failure: unknown;
  private ended = false;
  private readonly ready: Promise<void>;
  private readonly done: Promise<number>;
  private resolveReady!: () => void;
  private rejectReady!: (err: unknown) => void;
  private resolveDone!: (rows: number) => void;
  private rejectDone!: (err: unknown) => void;

  constructor(text: string) {
    this.text = text;
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.done = new Promise<number>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Whoever awaits them sees the failure; unawaited, it must not be an unhandled rejection.
    this.ready.catch(() => undefined);
    this.done.catch(() => undefined);
  }

  /** The server refused the COPY, or the connection failed: what went wrong (undefined: nothing yet). */
  get failed(): unknown {
    return this.failure;
  }

  /** Settles when the COPY is over: its rows, or its failure. */
  get finished(): Promise<number> {
    return this.done;
  }

  /**
   * Send `chunks` as COPY data. Resolves once every byte is with the kernel (the chunks' memory may be
   * reused); rejects when the COPY failed before or meanwhile.
   */
  async send(chunks: readonly Buffer[]): Promise<void> {
    await this.ready;
    if (this.failure !== undefined) throw this.failure;
    if (this.ended) throw new Error('COPY data sent after its end');
    const socket = (this.connection as Connection).stream;
    // An empty CopyData message is legal but says nothing: none is sent.
    const parts = chunks.filter((c) => c.length > 0);
    const written = new Promise<void>((resolve, reject) => {
      if (parts.length === 0) return resolve();
      socket.cork();
      parts.forEach((chunk, i) => {
        socket.write(copyDataHeader(chunk.length));
        // Writes complete in order: the last one's callback says every byte went out.
        if (i === parts.length - 1) socket.write(chunk, (err) => (err ? reject(err) : resolve()));
        else socket.write(chunk);
      });
      socket.uncork();
    });
    // A connection that fails never calls back: the COPY's failure says so first.
    await Promise.race([written, this.done.then(() => undefined)]);
    if (this.failure !== undefined) throw this.failure;
  }

  /** No more data: CopyDone. Resolves to the rows the COPY loaded, once the server says so. */
  async end(): Promise<number> {
    await this.ready;
    if (!this.ended && this.failure === undefined) {
      this.ended = true;
      (this.connection as Connection).endCopyFrom();
    }
    return this.done;
  }

  /** Give up: CopyFail (the server rolls the COPY back and answers with an error, which end() then gives). */
  abort(message: string): void {
    if (this.ended || this.failure !== undefined) return;
    this.ended = true;
    // Also a COPY still queued behind another query on its connection: it fails as soon as it starts.
    this.ready.then(() => this.connection?.sendCopyFail(message), () => undefined);
  }

  // ---- node-postgres' side: the submittable interface ----

  /** node-postgres overwrites this with its timeout mechanism when query_timeout is set. */
  callback(): void {}

  submit(connection: Connection): void {
    this.connection = connection;
    connection.query(this.text);
  }

  handleCopyInResponse(): void {
    this.resolveReady();
  }

  handleCommandComplete(msg: { text?: string }): void {
    this.rows = copyRowCount(msg.text);
  }

  handleReadyForQuery(): void {
    this.callback();
    this.resolveReady();
    this.resolveDone(this.rows);
  }

  handleError(err: unknown): void {
    this.callback();
    this.failure ??= err;
    this.rejectReady(this.failure);
    this.rejectDone(this.failure);
  }

  handleCopyData(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
}

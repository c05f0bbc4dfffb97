/**
 * The rejects file of --on-error skip: the rejected records byte for byte (after the input's header,
 * framed as the input was), so that the file is valid input to fix and import again; and next to it
 * FILE.log, one NDJSON line per reject saying where it was and why it was refused.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { DataioError } from '../../errors.js';
import { isPgError, parseCopyWhere } from '../../pg/pg-errors.js';

export interface Reject {
  /** The input file, when the import reads several. */
  file?: string | undefined;
  /** 1-based input line where the record starts. */
  line: number;
  /** Byte offset of the record in the (decompressed) input. */
  offset: number;
  column?: string | undefined;
  sqlstate?: string | undefined;
  message: string;
  /** The record as it was in the input. */
  raw: Buffer;
  /**
   * Refused only when the staged rows were moved into the table: `raw` is the row written from the
   * values staged for it, and `line` and `offset` are where its batch begins.
   */
  moved?: boolean | undefined;
}

/**
 * How a row known only by its values (refused when staged rows were moved) is written back as a
 * record of the input's format: COPY it out with the input's options, or as a JSON object.
 */
export type RejectsAs = { kind: 'copy'; options: string } | { kind: 'json' };

export interface RejectsLayout {
  /** Written before the first record: the input's header line, if it had one. */
  header?: Buffer | undefined;
  /** 'lines': one record after the other, each ending with `eol` (added when missing); 'json-array': one JSON array. */
  framing: 'lines' | 'json-array';
  eol: Buffer;
}

/** Where the rejects go by default: next to the input (`data.csv` → `data.rejects.csv`), or here for stdin. */
export function defaultRejectsPath(input: string, table: string, ext: string): string {
  if (input === '-') return `${table.replace(/[^\w.-]+/g, '_')}.rejects${ext}`;
  let base = basename(input);
  if (/\.gz$/i.test(base)) base = base.slice(0, -3);
  const own = extname(base);
  return join(dirname(input), `${own === '' ? base : base.slice(0, -own.length)}.rejects${own === '' ? ext : own}`);
}

/** A row error as a reject, with the column and SQLSTATE the server gave. */
export function rejectOf(err: unknown, at: { line: number; offset: number; raw: Buffer }): Reject {
  if (isPgError(err)) {
    const column = parseCopyWhere(err.where).column ?? err.column;
    return { ...at, column, sqlstate: err.code, message: err.message };
  }
  if (err instanceof DataioError) return { ...at, message: err.message };
  return { ...at, message: err instanceof Error ? err.message : String(err) };
}

/** The FILE.log line of a reject. */
export function logLine(r: Reject): string {
  return (
    JSON.stringify({
      ...(r.file !== undefined ? { file: r.file } : {}),
      ...(r.moved === true ? { batchLine: r.line, batchOffset: r.offset } : { line: r.line, offset: r.offset }),
      column: r.column ?? null,
      sqlstate: r.sqlstate ?? null,
      message: r.message,
    }) + '\n'
  );
}

/** The rejects file and its log, opened on the first reject (a clean import leaves no file). */
export class RejectsFile {
  readonly path: string;
  readonly logPath: string;
  private readonly layout: RejectsLayout;
  private data: FileHandle | undefined;
  private log: FileHandle | undefined;
  private written = 0;

  constructor(path: string, layout: RejectsLayout) {
    this.path = path;
    this.logPath = `${path}.log`;
    this.layout = layout;
  }

  get count(): number {
    return this.written;
  }

  async append(rejects: readonly Reject[]): Promise<void> {
    if (rejects.length === 0) return;
    const parts: Buffer[] = [];
    if (this.data === undefined) {
      try {
        this.data = await open(this.path, 'w');
        this.log = await open(this.logPath, 'w');
      } catch (err) {
        throw new DataioError('OUTPUT_WRITE', `cannot write the rejects file ${this.path}: ${(err as Error).message}`, {
          hint: 'name another place with --rejects FILE',
          cause: err,
        });
      }
      if (this.layout.header !== undefined) parts.push(this.layout.header);
      if (this.layout.framing === 'json-array') parts.push(Buffer.from('['), this.layout.eol);
    }
    const { eol } = this.layout;
    for (const r of rejects) {
      if (this.layout.framing === 'json-array') {
        if (this.written > 0) parts.push(Buffer.from(','), eol);
        parts.push(r.raw);
      } else {
        parts.push(r.raw);
        if (!endsWith(r.raw, eol)) parts.push(eol);
      }
      this.written++;
    }
    await this.data.write(Buffer.concat(parts));
    await this.log?.write(rejects.map(logLine).join(''));
  }

  async close(): Promise<void> {
    try {
      if (this.data !== undefined && this.layout.framing === 'json-array') await this.data.write(Buffer.concat([this.layout.eol, Buffer.from(']'), this.layout.eol]));
    } finally {
      await this.data?.close();
      await this.log?.close();
      this.data = undefined;
      this.log = undefined;
    }
  }
}

function endsWith(buf: Buffer, tail: Buffer): boolean {
  return buf.length >= tail.length && buf.subarray(buf.length - tail.length).equals(tail);
}

/**
 * Hands values on in sequence order (0, 1, 2, …) whatever order they arrive in: batches finish out of
 * order, the rejects file stays in input order. Holds only what waits for an earlier sequence number.
 */
export class InOrder<T> {
  private next = 0;
  private readonly waiting = new Map<number, T>();
  private readonly deliver: (value: T) => Promise<void>;
  private chain: Promise<void> = Promise.resolve();

  constructor(deliver: (value: T) => Promise<void>) {
    this.deliver = deliver;
  }

  /** Resolves when everything it released has been delivered. */
  put(seq: number, value: T): Promise<void> {
    this.waiting.set(seq, value);
    const ready: T[] = [];
    for (let v = this.waiting.get(this.next); v !== undefined || this.waiting.has(this.next); v = this.waiting.get(this.next)) {
      this.waiting.delete(this.next);
      this.next++;
      ready.push(v as T);
    }
    this.chain = this.chain.then(async () => {
      for (const v of ready) await this.deliver(v);
    });
    return this.chain;
  }

  /** Values still held back (an earlier sequence number never came). */
  get pending(): number {
    return this.waiting.size;
  }
}

/**
 * One connection's COPY kept open across the batches it loads ('import' transactions, --on-error
 * abort): its batches go into it one after another, as `psql \copy` sends a whole file, instead of a
 * COPY statement each (about 2.3 ms per batch between one COPY's end and the next
 * one's start: 45 ms per worker over a 2M-row import here).
 *
 * The server numbers the lines of the whole COPY; a batch numbers its own. So the COPY remembers, for
 * each batch it took, how many lines came before it, and turns a failure's "line N" into the batch and
 * its own line (locate). A batch may go into a COPY only where the previous one ended at a line end (a
 * file's last batch may not: the COPY then ends after it) and only with the same line ending (one COPY
 * refuses to mix them; files may differ): batches of several files, and batches joined from several
 * small files, share a COPY when their files end their lines alike. A COPY takes at most MAX_BATCHES,
 * so that what it remembers stays small however large the input.
 */
import type pg from 'pg';
import { CopyIn } from '../../pg/copy-in.js';
import { isPgError, parseCopyWhere, withCopyLine } from '../../pg/pg-errors.js';
import type { CopyWorkerBatch } from './copy-pool.js';

/** How a batch goes into an open COPY: the lines it holds, and whether it ends at a line end. */
export interface StreamLines {
  lines: number;
  endsLine: boolean;
  /** Batches of one group may share a COPY (their files' line ending). */
  group: string;
}

/** The rows a batch holds by its lines, for progress until its COPY tells (a last line without a line ending is a row too). */
export function rowsByLines(l: StreamLines): number {
  return l.lines + (l.endsLine ? 0 : 1);
}

/** After this many batches a COPY ends and the next batch opens another. */
export const MAX_BATCHES = 256;

/** A COPY failed: the failure as the batch that held the failing line would have met it alone. */
export class StreamedCopyError extends Error {
  constructor(
    readonly failure: unknown,
    readonly batch: CopyWorkerBatch,
  ) {
    super(failure instanceof Error ? failure.message : String(failure));
    this.name = 'StreamedCopyError';
  }
}

/** A batch as a COPY remembers it: its numbering, not its bytes (which are reused once sent). */
function described<B extends CopyWorkerBatch>(batch: B): B {
  return { ...batch, chunks: [], release: undefined };
}

export class StreamedCopy<B extends CopyWorkerBatch> {
  private readonly copy: CopyIn;
  private readonly group: string;
  /** The batches sent, with the COPY lines before each. */
  private readonly sent: { batch: B; before: number }[] = [];
  private lines = 0;
  /** Takes no more batches (the last one did not end at a line end, or it took MAX_BATCHES). */
  private full = false;

  constructor(client: pg.Client, sql: string, group: string) {
    this.copy = new CopyIn(sql);
    this.group = group;
    void client.query(this.copy as unknown as pg.QueryConfig);
  }

  /** Whether a batch of `group` may go into this COPY. */
  accepts(group: string): boolean {
    return !this.full && group === this.group && this.copy.failed === undefined;
  }

  /** This COPY takes no more batches: end it. */
  get closed(): boolean {
    return this.full;
  }

  /** Settles when the COPY is over: its rows, or its failure (as a StreamedCopyError when a batch can be named). */
  get finished(): Promise<number> {
    return this.copy.finished.catch((err: unknown) => {
      throw this.explain(err);
    });
  }

  /** Send a batch (resolves once its bytes are with the kernel: its memory may be reused). */
  async send(batch: B, lines: StreamLines): Promise<void> {
    this.sent.push({ batch: described(batch), before: this.lines });
    this.lines += lines.lines;
    if (!lines.endsLine || this.sent.length >= MAX_BATCHES) this.full = true;
    try {
      await this.copy.send(batch.chunks);
    } catch (err) {
      throw this.explain(err);
    }
  }

  /** CopyDone; resolves to the rows the COPY loaded. */
  async end(): Promise<number> {
    try {
      return await this.copy.end();
    } catch (err) {
      throw this.explain(err);
    }
  }

  /** CopyFail: the server rolls the COPY back. */
  abort(message: string): void {
    this.copy.abort(message);
  }

  /** The batch that holds the COPY's line `n`, and the line's number within that batch. */
  locate(n: number): { batch: B; line: number } | undefined {
    for (let i = this.sent.length - 1; i >= 0; i--) {
      const s = this.sent[i] as { batch: B; before: number };
      if (n > s.before) return { batch: s.batch, line: n - s.before };
    }
    return undefined;
  }

  private explain(err: unknown): unknown {
    if (err instanceof StreamedCopyError) return err;
    const first = this.sent[0];
    if (first === undefined) return err;
    const line = isPgError(err) ? parseCopyWhere(err.where).line : undefined;
    const at = line === undefined ? undefined : this.locate(line);
    if (at === undefined || !isPgError(err)) return new StreamedCopyError(err, first.batch);
    return new StreamedCopyError(withCopyLine(err, at.line), at.batch);
  }
}

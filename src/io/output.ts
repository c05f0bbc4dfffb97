/**
 * Opening an output: stdout (`-`) or a file written through a temporary name that is renamed only
 * on success, so a failed job never leaves a truncated file that looks complete.
 */
import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { DataioError } from '../errors.js';

export interface Output {
  stream: Writable;
  /** For messages. */
  name: string;
  /** Make the output final (rename the temporary file into place). */
  commit(): Promise<void>;
  /** Remove what was written (files only). */
  abort(): Promise<void>;
}

export function openOutput(path: string, stdout: Writable = process.stdout): Output {
  if (path === '-') {
    return { stream: stdout, name: 'stdout', commit: async () => undefined, abort: async () => undefined };
  }
  const tmp = join(dirname(path), `.${basename(path)}.dataio-${process.pid}.tmp`);
  const stream = createWriteStream(tmp, { flags: 'wx', highWaterMark: 1024 * 1024 });
  return {
    stream,
    name: path,
    commit: async () => {
      try {
        await rename(tmp, path);
      } catch (err) {
        throw new DataioError('OUTPUT_WRITE', `cannot write ${path}: ${(err as Error).message}`, { cause: err });
      }
    },
    abort: async () => {
      stream.destroy();
      await unlink(tmp).catch(() => undefined);
    },
  };
}

/** The reader of our stdout went away (`dataio export | head`): not an error for a Unix tool. */
export function isBrokenPipe(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'EPIPE' || (err as { code?: string } | null)?.code === 'ERR_STREAM_DESTROYED';
}

/**
 * Opening an output: stdout (`-`) or a file written through a temporary name that is renamed only
 * on success, so a failed job never leaves a truncated file that looks complete.
 */
import { createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { outputError } from './output-error.js';
import { pendingTemporaryFiles } from './temporary-files.js';

export { isBrokenPipe, outputError } from './output-error.js';
export { pendingTemporaryFiles, removePendingTemporaryFiles } from './temporary-files.js';

export interface Output {
  stream: Writable;
  /** For messages. */
  name: string;
  /** Resolves once the output can take bytes; fails with OUTPUT_WRITE (so a job can fail before it starts). */
  ready(): Promise<void>;
  /** Make the output final (rename the temporary file into place). */
  commit(): Promise<void>;
  /** Remove what was written (files only). */
  abort(): Promise<void>;
}

/**
 * A Writable that writes into `dest` without owning it: its failure or destruction never reaches
 * `dest`, while `dest`'s own errors (EPIPE, ENOSPC) fail it.
 *
 * Why: pipeline() destroys every stream of a failed pipeline, the last one with the failure itself
 * (node's lib/internal/streams/pipeline.js, destroyer). Handed process.stdout, a server error in the
 * middle of an export destroyed stdout, whose 'error' event then carried the server's error to the
 * CLI's stdout handler (it rethrew anything but EPIPE): an uncaught exception and a stack trace
 * instead of one line. stdout belongs to the process, not to one job.
 */
export function borrowedWritable(dest: Writable): Writable {
  let waiting: ((err?: Error | null) => void) | undefined;
  const settle = (err?: Error | null) => {
    const cb = waiting;
    waiting = undefined;
    cb?.(err);
  };
  const onDrain = () => settle();
  const onError = (err: Error) => {
    if (waiting !== undefined) settle(err);
    else borrowed.destroy(err);
  };
  const onClose = () => onError(Object.assign(new Error('the output was closed'), { code: 'ERR_STREAM_DESTROYED' }));
  const detach = () => {
    dest.off('drain', onDrain);
    dest.off('error', onError);
    dest.off('close', onClose);
  };
  const borrowed = new Writable({
    // Hold nothing here: a chunk waits in `dest` (its own highWaterMark), or not at all.
    highWaterMark: 0,
    write(chunk: Buffer, _enc, cb) {
      if (dest.destroyed || dest.writableEnded) return cb(Object.assign(new Error('the output was closed'), { code: 'ERR_STREAM_DESTROYED' }));
      if (dest.write(chunk)) cb();
      else waiting = cb;
    },
    final(cb) {
      // Everything handed over, and `dest` left open for its owner.
      const done = (err?: Error | null) => {
        detach();
        cb(err);
      };
      if (dest.writableNeedDrain) waiting = done;
      else done();
    },
    destroy(err, cb) {
      waiting = undefined;
      detach();
      cb(err);
    },
  });
  dest.on('drain', onDrain);
  dest.on('error', onError);
  dest.on('close', onClose);
  return borrowed;
}

export function openOutput(path: string, stdout: Writable = process.stdout): Output {
  if (path === '-') {
    const stream = borrowedWritable(stdout);
    return {
      stream,
      name: 'stdout',
      ready: async () => undefined,
      commit: async () => undefined,
      // Only lets go of stdout (its listeners); stdout itself stays open.
      abort: async () => void stream.destroy(),
    };
  }
  const tmp = join(dirname(path), `.${basename(path)}.dataio-${process.pid}.tmp`);
  const stream = createWriteStream(tmp, { flags: 'wx', highWaterMark: 1024 * 1024 });
  pendingTemporaryFiles.add(tmp);
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  // The failure is reported by ready() or by whoever writes; never unhandled.
  opened.catch(() => undefined);
  return {
    stream,
    name: path,
    ready: async () => {
      try {
        const st = await stat(path).catch(() => undefined);
        if (st?.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
        await opened;
      } catch (err) {
        throw outputError(path, err);
      }
    },
    commit: async () => {
      try {
        await rename(tmp, path);
        pendingTemporaryFiles.delete(tmp);
      } catch (err) {
        throw outputError(path, err);
      }
    },
    abort: async () => {
      stream.destroy();
      await unlink(tmp).catch(() => undefined);
      pendingTemporaryFiles.delete(tmp);
    },
  };
}

/**
 * An output's failure as the one line the user reads; a reader that went away. Apart from output.ts
 * (its streams and node:fs/promises) because the CLI needs these from its first moment, for stdout,
 * and an import never opens an output: loading them all took a few milliseconds of every start.
 */
import { DataioError } from '../errors.js';

const REASONS: Record<string, string> = {
  ENOENT: 'its directory does not exist',
  ENOTDIR: 'a part of its path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'it is a directory',
};

/** An output failure as one line that names the file the user gave (not the temporary name). */
export function outputError(path: string, err: unknown): DataioError {
  if (err instanceof DataioError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const reason = (code !== undefined ? REASONS[code] : undefined) ?? (err instanceof Error ? err.message : String(err));
  return new DataioError('OUTPUT_WRITE', `cannot write ${path}: ${reason}`, { cause: err, detail: code });
}

/** The reader of our stdout went away (`dataio export | head`): not an error for a Unix tool. */
export function isBrokenPipe(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'EPIPE' || (err as { code?: string } | null)?.code === 'ERR_STREAM_DESTROYED';
}

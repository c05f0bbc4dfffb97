/**
 * Trying a whole import again after a transient failure (a lost connection, a server restart, a
 * deadlock): the job marks such a failure once it has undone everything (or, resumable, once the
 * ledger says what is in), and the command runs the import again from the start of its input.
 */
import type { DataioError } from '../errors.js';
import { withRetry } from '../pg/retry.js';

/** Failures of a whole import that may go well on another try (see retryingImport). */
const retryable = new WeakSet<object>();

/** Say that `err` ended an import that may go well on another try (everything undone, or in the ledger). */
export function markRetryable(err: DataioError): void {
  retryable.add(err);
}

/** Delays before trying a failed import again (all-or-nothing: from the start; resumable: what is missing). */
export const IMPORT_RETRY_MS: readonly number[] = [1000, 3000, 10000];

/**
 * Run an import, and when it failed for a transient reason (a lost connection, a server restart, a
 * deadlock) with everything undone (or, resumable, with the ledger telling what is in), run it again
 * after a pause: a few times, and only when the input can be read again from its start (not stdin).
 */
export async function retryingImport<R>(attempt: () => Promise<R>, o: { reopenable: boolean; warn(m: string): void; signal?: AbortSignal | undefined }): Promise<R> {
  return withRetry(
    attempt,
    (err) => o.reopenable && err instanceof Object && retryable.has(err) && o.signal?.aborted !== true,
    IMPORT_RETRY_MS,
    (err, delay, retry) => o.warn(`${(err as Error).message}: trying again in ${delay / 1000} s (try ${retry + 1} of ${IMPORT_RETRY_MS.length + 1})`),
  );
}


/**
 * Transient failures, told apart by SQLSTATE (never by message text), and a retry with backoff.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DataioError } from '../errors.js';
import { errnoOf, isPgError } from './pg-errors.js';

/**
 * SQLSTATEs worth another try: the server is starting up or shutting down (57P01–57P03), out of
 * connections or resources (class 53), a serialization failure or deadlock (40001, 40P01), and a
 * connection failure reported by the server (class 08).
 */
export function isTransientSqlstate(code: string | undefined): boolean {
  if (code === undefined) return false;
  return code === '40001' || code === '40P01' || /^57P0[123]$/.test(code) || code.startsWith('53') || code.startsWith('08');
}

/** Delays between tries: 0.25 s doubling, at most 4 s each, about 10 s in all. */
export const CONNECT_BACKOFF_MS: readonly number[] = [250, 500, 1000, 2000, 2000, 4000];

/**
 * Run `attempt` until it succeeds, or fails with an error `transient` rejects, or the delays run out.
 * `before` hears of each retry (to warn) before its pause.
 */
export async function withRetry<T>(
  attempt: () => Promise<T>,
  transient: (err: unknown) => boolean,
  delays: readonly number[] = CONNECT_BACKOFF_MS,
  before?: (err: unknown, delayMs: number, retry: number) => void,
): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      const delay = delays[i];
      if (delay === undefined || !transient(err)) throw err;
      before?.(err, delay, i + 1);
      await sleep(delay);
    }
  }
}

/** Socket errors that mean the server went away or is not there yet, not that we did something wrong. */
const TRANSIENT_ERRNO = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/**
 * Worth another try: a server error with a transient SQLSTATE, a socket error from the list above, or
 * a DataioError marked transient (a connection that ended under us), looking through causes.
 */
export function isTransientFailure(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof DataioError && e.transient) return true;
    if (isPgError(e)) return isTransientSqlstate(e.code);
    const errno = errnoOf(e);
    if (errno !== undefined && TRANSIENT_ERRNO.has(errno)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

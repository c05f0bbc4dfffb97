/** The default worker count, apart from the loading code so the CLI can show it without loading that. */
import { availableParallelism } from 'node:os';

export const DEFAULT_WORKERS = 32;

/**
 * 'auto': DEFAULT_WORKERS connections, except for a server on this machine, which shares our cores:
 * there, connections beyond the cores only add contention (measured: 2 workers 2.21 s, 32 workers
 * 2.54 s for the same 2M rows on 2 cores).
 */
export function autoWorkers(local: boolean, cores = availableParallelism()): number {
  return local ? Math.min(DEFAULT_WORKERS, Math.max(2, cores)) : DEFAULT_WORKERS;
}


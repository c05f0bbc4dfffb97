/** Default worker counts and batch sizes, apart from the code that uses them so the CLI can show them without loading it. */
import { availableParallelism } from 'node:os';

export const DEFAULT_WORKERS = 32;

/**
 * 'auto': DEFAULT_WORKERS connections, except for a server on this machine, which shares our cores:
 * there, connections beyond the cores only add contention (measured: 2 workers 2.21 s, 32 workers
 * 2.54 s for the same 2M rows on 2 cores).
 */
/** Batches in flight are at most 2 × workers; the default batch size keeps them within this budget. */
export const IN_FLIGHT_BUDGET = 64 * 1024 * 1024;

/**
 * 'auto' batch size: 4 MiB (measured: as fast as 16 MiB, fewer bytes held), smaller when many workers
 * would otherwise hold too much (measured at 20M rows with 32 workers: peak RSS 405 MB with 4 MiB
 * batches, 225 MB with 1 MiB), never below 1 MiB (each batch is one COPY statement).
 */
export function autoBatchSize(workers: number): number {
  const mib = 1024 * 1024;
  return Math.min(4 * mib, Math.max(mib, Math.floor(IN_FLIGHT_BUDGET / (2 * workers) / mib) * mib));
}

/**
 * 'auto' batch size where a connection's batches share one COPY (import/load/streamed-copy.ts): a
 * batch then costs no statement of its own, and smaller ones even out the connections' last stretch
 * (measured on 2M rows, 2 workers, 9 runs each: the two COPYs ended 28 ms apart with 1 MiB batches,
 * 75 ms apart with 4 MiB), with less held in memory.
 */
export const SHARED_COPY_BATCH_SIZE = 1024 * 1024;

/**
 * With `ramp`, an import's first batches are smaller: 1/16, 1/8, 1/4 and 1/2 of the batch size (never
 * below 64 KiB), then the batch size. The first COPY cannot begin before its batch is read and cut,
 * nor the second connection's before the second batch: with 4 MiB batches the first COPY began about
 * 40 ms into the reading (new read buffers cost their page faults: 11 ms per 4 MiB here), the second
 * 45 ms after it. A pure function of the batch's number, so every pass over the input cuts alike.
 */
export function rampedBatchSize(batchSize: number, index: number, ramp: boolean): number {
  const steps = 4;
  if (!ramp || index >= steps) return batchSize;
  return Math.min(batchSize, Math.max(64 * 1024, Math.floor(batchSize / 2 ** (steps - index))));
}

export function autoWorkers(local: boolean, cores = availableParallelism()): number {
  return local ? Math.min(DEFAULT_WORKERS, Math.max(2, cores)) : DEFAULT_WORKERS;
}


/**
 * 'auto' for a parallel table export: one connection per core for a server on this machine (measured
 * on 2 cores: CSV 1.61 s with 2 connections, 2.13 s with one, psql 1.91 s), else 4.
 */
export function autoExportWorkers(local: boolean, cores = availableParallelism()): number {
  return local ? autoWorkers(true, cores) : 4;
}

/**
 * One of Node's own modules, loaded when first used rather than as dataio starts (node:zlib, for one,
 * costs every start-up about a millisecond, and only gzip input and resumable imports use it).
 * Through require: a dynamic import() of a built-in stays an import() in the bundle, which the code
 * cache's vm.Script cannot run.
 */
import { createRequire } from 'node:module';

export function lazyBuiltin<T>(name: `node:${string}`): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= createRequire(import.meta.url)(name) as T);
}

/** node:zlib: gzip input and output, and the ledger's CRC-32. */
export const zlib = lazyBuiltin<typeof import('node:zlib')>('node:zlib');

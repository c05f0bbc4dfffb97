/** Library-call options for a plain all-or-nothing import (--on-error abort), as the integration tests use them. */
import type { ImportOptions } from '../../src/import/import.js';

export const quietHooks = { progress: () => ({ update: () => undefined, stop: () => undefined }), warn: () => undefined };

export function importOptions(inputs: string[], table: string, workers: number, batchSize: number, format: 'csv' | 'tsv' = 'csv'): ImportOptions {
  return {
    inputs,
    table,
    format,
    create: false,
    truncate: false,
    workers,
    batchSize,
    sampleRows: 100,
    onError: 'abort',
    onConflict: 'error',
    nodes: { kind: 'none' },
    csv: { header: format === 'csv' },
    json: { ignoreUnknown: false },
  };
}

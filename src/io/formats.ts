/** File formats by name: the extension says what a file holds, for inputs and outputs alike. */
export type FileFormat = 'csv' | 'tsv' | 'ndjson' | 'json';

/** The format a path's extension names (.csv .tsv .ndjson .jsonl .json, each optionally .gz). */
export function formatFromPath(path: string): FileFormat | undefined {
  const p = path.toLowerCase().replace(/\.gz$/, '');
  if (p.endsWith('.csv')) return 'csv';
  if (p.endsWith('.tsv') || p.endsWith('.tab')) return 'tsv';
  if (p.endsWith('.ndjson') || p.endsWith('.jsonl')) return 'ndjson';
  if (p.endsWith('.json')) return 'json';
  return undefined;
}

/**
 * The COPY statements of an export. Pure: strings in, SQL out.
 *
 * CSV and TSV are PostgreSQL's own `csv` and `text` formats, so the bytes are exactly what
 * `psql \copy … to stdout` gives. NDJSON and JSON rows are built by the server (row_to_json keeps
 * bigint and numeric as written, nests json/jsonb, writes timestamps in ISO 8601) and come through a
 * text-format COPY whose escaping json-rows.ts undoes.
 */
import { usage } from '../errors.js';

export type ExportFormat = 'csv' | 'tsv' | 'ndjson' | 'json';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['csv', 'tsv', 'ndjson', 'json'];

export type ExportSource =
  /** A relation, schema-qualified and quoted. `plain`: an ordinary table, which `COPY t TO` accepts. */
  | { kind: 'table'; sql: string; plain: boolean }
  | { kind: 'query'; sql: string };

/** A range of heap blocks: `ctid >= '(from,0)' AND ctid < '(to,0)'`; undefined bounds are open. */
export interface BlockRange {
  from: number | undefined;
  to: number | undefined;
}

/** The alias of the exported relation; `alias.*` names the whole row even if a column is called so. */
const ROW = 'dataio_row';

/** A query as people write it, ready to put in parentheses: no trailing semicolons. */
export function normalizeQuery(query: string): string {
  const q = query.replace(/[\s;]+$/, '');
  if (q.trim() === '') throw usage('the query is empty');
  return q;
}

function rangeCondition(range: BlockRange | undefined): string {
  if (range === undefined) return '';
  const parts: string[] = [];
  if (range.from !== undefined && range.from > 0) parts.push(`${ROW}.ctid >= '(${range.from},0)'::tid`);
  if (range.to !== undefined) parts.push(`${ROW}.ctid < '(${range.to},0)'::tid`);
  return parts.length === 0 ? '' : ` WHERE ${parts.join(' AND ')}`;
}

/** What goes after FROM; a query on its own lines, so that a trailing `-- comment` ends there. */
function fromItem(source: ExportSource): string {
  return source.kind === 'table' ? `${source.sql} AS ${ROW}` : `(\n${source.sql}\n) AS ${ROW}`;
}

function copyOptions(format: ExportFormat, header: boolean): string {
  switch (format) {
    case 'csv':
      return header ? '(FORMAT csv, HEADER)' : '(FORMAT csv)';
    case 'tsv':
      return header ? '(FORMAT text, HEADER)' : '(FORMAT text)';
    case 'ndjson':
    case 'json':
      return '(FORMAT text)';
  }
}

/**
 * The COPY for a source, or for one block range of a table (parallel export). A whole plain table is
 * copied as `COPY t TO` (what psql users write, and what the byte-identity promise is about).
 */
export function exportCopySql(source: ExportSource, format: ExportFormat, header: boolean, range?: BlockRange): string {
  const options = copyOptions(format, header);
  const where = rangeCondition(range);
  if (format === 'ndjson' || format === 'json') {
    return `COPY (SELECT row_to_json(${ROW}.*) FROM ${fromItem(source)}${where}) TO STDOUT ${options}`;
  }
  if (source.kind === 'table' && source.plain && where === '') return `COPY ${source.sql} TO STDOUT ${options}`;
  if (source.kind === 'query' && where === '') return `COPY (\n${source.sql}\n) TO STDOUT ${options}`;
  return `COPY (SELECT * FROM ${fromItem(source)}${where}) TO STDOUT ${options}`;
}

/** The statement whose plan estimates how many rows the export gives (for % in progress). */
export function estimateSql(source: ExportSource): string {
  return source.kind === 'table' ? `EXPLAIN (FORMAT JSON) SELECT * FROM ${source.sql}` : `EXPLAIN (FORMAT JSON)\n${source.sql}`;
}

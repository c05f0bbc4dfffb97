/**
 * The start of a CSV/text input, read before the fast path takes over: the BOM, the header record,
 * the line-ending style, and (for --create) a sample of parsed rows. Only this small part of the input
 * is ever parsed in Node; the bytes are then handed back to the batcher untouched.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { DataioError } from '../../errors.js';
import type { ChunkReader } from '../../io/input.js';
import { countLines, findFirstRecord, makeScanner, UTF8_BOM, type Dialect, type Eol } from './scanner.js';

export interface DelimitedFormat {
  kind: 'csv' | 'text';
  delimiter: string;
  dialect: Dialect;
  /** The string that means NULL (unquoted), as PostgreSQL's NULL option. */
  nullString: string;
  quote: string;
  escape: string;
}

export interface Prologue {
  /** Header names, when the input has a header. */
  header: string[] | undefined;
  /** The header record as it was in the input (with its line end; no BOM). */
  headerBytes: Buffer | undefined;
  eol: Eol | null;
  /** Offset of the first data byte in the decoded input (after BOM and header). */
  dataOffset: number;
  /** 1-based input line of the first data record. */
  dataLine: number;
  /** Parsed sample rows (only when asked for). */
  sample: (string | null)[][];
  /** True when the input holds no data record at all. */
  empty: boolean;
}

/** Up to this many bytes are read ahead for the sample; the sample may hold fewer rows. */
const SAMPLE_BYTES_MAX = 16 * 1024 * 1024;

/** Parse complete records of a CSV or text-format buffer into fields, NULL as PostgreSQL would read it. */
export function parseRecords(buf: Buffer, fmt: DelimitedFormat, firstLine: number): (string | null)[][] {
  if (buf.length === 0) return [];
  if (fmt.kind === 'text') return parseTextRecords(buf, fmt);
  try {
    return parseCsv(buf, {
      delimiter: fmt.delimiter,
      quote: fmt.quote,
      escape: fmt.escape,
      relax_column_count: true,
      relax_quotes: true,
      skip_empty_lines: false,
      // PostgreSQL: an unquoted field equal to the NULL string is NULL; a quoted one is a value.
      cast: (value: string, ctx: { quoting: boolean }) => (!ctx.quoting && value === fmt.nullString ? null : value),
    }) as (string | null)[][];
  } catch (err) {
    const lines = (err as { lines?: number }).lines;
    throw new DataioError('INPUT_FORMAT', `cannot parse the CSV near input line ${firstLine + (lines ?? 1) - 1}: ${(err as Error).message}`, {
      hint: 'check the quoting there, or the --delimiter / --quote / --escape options',
      cause: err,
    });
  }
}

const TEXT_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** PostgreSQL text format: tab (or --delimiter) separated, backslash escapes, \N for NULL. */
export function parseTextRecords(buf: Buffer, fmt: DelimitedFormat): (string | null)[][] {
  const text = buf.toString('utf8');
  const lines = text.split(/\r\n|\n|\r/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((line) => {
    const fields: (string | null)[] = [];
    let cur = '';
    let raw = '';
    for (let i = 0; i < line.length; i++) {
      const ch = line[i] as string;
      if (ch === '\\' && i + 1 < line.length) {
        const nx = line[++i] as string;
        raw += ch + nx;
        cur += TEXT_ESCAPES[nx] ?? nx;
      } else if (ch === fmt.delimiter) {
        fields.push(raw === fmt.nullString || raw === '\\N' ? null : cur);
        cur = '';
        raw = '';
      } else {
        cur += ch;
        raw += ch;
      }
    }
    fields.push(raw === fmt.nullString || raw === '\\N' ? null : cur);
    return fields;
  });
}

/**
 * Read the prologue from `reader` and put every byte after the header back, so the batcher sees the
 * data from its first byte.
 */
export async function readPrologue(
  reader: ChunkReader,
  fmt: DelimitedFormat,
  opts: { header: boolean; sampleRows: number; stripBom: boolean },
): Promise<Prologue> {
  let buf: Buffer = Buffer.alloc(0);
  let eof = false;
  const more = async (): Promise<boolean> => {
    const c = await reader.next();
    if (c === undefined) {
      eof = true;
      return false;
    }
    buf = buf.length === 0 ? c : Buffer.concat([buf, c]);
    return true;
  };

  // The BOM: PostgreSQL does not strip it (it would become part of the first column name).
  let bom = 0;
  while (buf.length < 3 && (await more()));
  if (opts.stripBom && buf.subarray(0, 3).equals(UTF8_BOM)) bom = 3;

  let first = findFirstRecord(buf.subarray(bom), fmt.dialect, eof);
  while (first === undefined) {
    await more();
    first = findFirstRecord(buf.subarray(bom), fmt.dialect, eof);
  }
  const eol = first.eol;
  let header: string[] | undefined;
  let headerRaw: Buffer | undefined;
  let dataStart = bom;
  let dataLine = 1;
  if (opts.header) {
    const headerBytes = buf.subarray(bom, bom + first.end);
    if (headerBytes.length === 0) {
      throw new DataioError('INPUT_FORMAT', 'the input is empty: expected a header line', {
        hint: 'pass --no-header (with --columns) when the input has no header',
      });
    }
    const rows = parseRecords(headerBytes, fmt, 1);
    header = (rows[0] ?? []).map((v) => v ?? '');
    headerRaw = Buffer.from(headerBytes);
    dataStart = bom + first.end;
    dataLine = 1 + countLines(headerBytes, eol);
  }

  const sample: (string | null)[][] = [];
  if (opts.sampleRows > 0 && eol !== null) {
    // Read ahead until enough whole records are buffered (or the cap, or the end).
    const scanner = makeScanner(fmt.dialect, eol);
    let records = 0;
    let scanned = dataStart;
    let lastEnd = dataStart;
    for (;;) {
      while (records < opts.sampleRows) {
        const end = scanner.findEnd(buf, scanned);
        if (end === -1) {
          scanned = buf.length;
          break;
        }
        records++;
        scanned = end;
        lastEnd = end;
      }
      if (records >= opts.sampleRows || eof || buf.length - dataStart >= SAMPLE_BYTES_MAX) break;
      // Rescan the tail of the grown buffer: the scanner state covers exactly buf[0, scanned).
      const before = buf.length;
      if (!(await more())) break;
      scanned = before;
    }
    const sampleEnd = eof && records < opts.sampleRows ? buf.length : lastEnd;
    sample.push(...parseRecords(buf.subarray(dataStart, sampleEnd), fmt, dataLine));
  } else if (opts.sampleRows > 0 && eol === null) {
    // A single record without a newline.
    sample.push(...parseRecords(buf.subarray(dataStart), fmt, dataLine));
  }

  const rest = buf.subarray(dataStart);
  const empty = rest.length === 0 && eof;
  reader.unshift(rest);
  return { header, headerBytes: headerRaw, eol, dataOffset: dataStart, dataLine, sample, empty };
}

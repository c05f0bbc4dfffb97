/**
 * JSON records to COPY text-format rows. Each member goes to its column's place; numbers, nested
 * objects and arrays keep their source text (so bigint and numeric arrive exactly as written), strings
 * are unescaped, and json/jsonb columns get every value as JSON text. Pure.
 */
import { decodeString, INCOMPLETE, JsonSyntaxError, Kind, PLAIN_STRING_RE, scanObject, skipWs, type FieldSink } from './scan.js';

/** COPY text format: backslash, tab, newline and carriage return are escaped; NULL is \N. */
export function copyEscape(v: string): string {
  if (!/[\\\t\n\r]/.test(v)) return v;
  return v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

export const COPY_NULL = '\\N';

export interface RowColumn {
  name: string;
  /** json or jsonb: values go in as JSON text. */
  json: boolean;
}

export class UnknownKeyError extends Error {
  readonly key: string;
  constructor(key: string) {
    super(`unknown key ${JSON.stringify(key)}`);
    this.key = key;
  }
}

export class RowBuilder implements FieldSink {
  /** Column index by the key's name, and by its source text as met in the input (a cache). */
  private readonly index = new Map<string, number>();
  private readonly byRawKey = new Map<string, number>();
  private readonly json: boolean[];
  private readonly values: string[];
  private readonly ignoreUnknown: boolean;

  constructor(columns: readonly RowColumn[], ignoreUnknown: boolean) {
    columns.forEach((c, i) => {
      this.index.set(c.name, i);
      this.byRawKey.set(JSON.stringify(c.name), i);
    });
    this.json = columns.map((c) => c.json);
    this.values = columns.map(() => COPY_NULL);
    this.ignoreUnknown = ignoreUnknown;
  }

  /** The keys met at each position of the previous record, with their columns (-1: skipped). */
  private readonly order: { raw: string; column: number }[] = [];
  private fieldNo = 0;

  private columnOf(rawKey: string): number {
    let i = this.byRawKey.get(rawKey);
    if (i === undefined) {
      const key = decodeString(rawKey);
      i = this.index.get(key);
      if (i === undefined && !this.ignoreUnknown) throw new UnknownKeyError(key);
      i ??= -1;
      this.byRawKey.set(rawKey, i);
    }
    return i;
  }

  field(s: string, keyStart: number, keyEnd: number, kind: Kind, valueStart: number, valueEnd: number): void {
    // Records mostly repeat the previous record's key order: compare in place, no slice, no hash.
    const expected = this.order[this.fieldNo];
    let i: number;
    if (expected !== undefined && keyEnd - keyStart === expected.raw.length && s.startsWith(expected.raw, keyStart)) {
      i = expected.column;
    } else {
      const raw = s.slice(keyStart, keyEnd);
      i = this.columnOf(raw);
      this.order[this.fieldNo] = { raw, column: i };
    }
    this.fieldNo++;
    if (i < 0) return;
    let v: string;
    if (kind === Kind.Null) v = COPY_NULL;
    else if (kind === Kind.Number || kind === Kind.True || kind === Kind.False) v = s.slice(valueStart, valueEnd);
    else if (kind === Kind.String && !this.json[i]) {
      const body = s.slice(valueStart + 1, valueEnd - 1);
      v = PLAIN_STRING_RE.test(body) ? body : copyEscape(decodeString(s.slice(valueStart, valueEnd)));
    } else v = copyEscape(s.slice(valueStart, valueEnd)); // JSON text: into a json column, or an object/array into another
    this.values[i] = v;
  }

  /** Scan one record and append its row (with its newline) to `parts`; members it did not name are NULL. Returns the row's length. */
  rowInto(text: string, parts: string[]): number {
    this.fieldNo = 0;
    try {
      const end = scanObject(text, skipWs(text, 0, text.length), text.length, this);
      if (end === INCOMPLETE) throw new JsonSyntaxError('the record ends inside its object (truncated?)', text.length);
      checkTrailing(text, end);
    } catch (err) {
      // Forget what the failed record set, so no value of it can leak into the next row.
      this.values.fill(COPY_NULL);
      throw err;
    }
    // One flat string per row: joining a batch of these is cheap, where joining every field of the
    // batch at once (tried) flattened hundreds of thousands of sliced strings at flush.
    const row = this.values.join('\t') + '\n';
    this.values.fill(COPY_NULL);
    parts.push(row);
    return row.length;
  }

  /** The record's row as one string (with its newline). */
  row(text: string): string {
    const parts: string[] = [];
    this.rowInto(text, parts);
    return parts.join('');
  }

}


function checkTrailing(text: string, end: number): void {
  for (let i = end; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10) {
      throw new JsonSyntaxError(`unexpected ${JSON.stringify(text[i])} after the end of the object`, i);
    }
  }
}

/** --jsonb-column: the whole record into one column, as JSON text (validated first). */
export function wholeRecordInto(text: string, parts: string[]): number {
  try {
    JSON.parse(text);
  } catch (err) {
    throw new JsonSyntaxError((err as Error).message, 0);
  }
  const v = copyEscape(text.trim());
  parts.push(v, '\n');
  return v.length + 1;
}

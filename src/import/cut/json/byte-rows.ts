/**
 * JSON records to COPY text rows, on bytes: the record's UTF-8 bytes in, the row's bytes written
 * straight into the batch's Buffer (RowWriter). Same rows, byte for byte, as RowBuilder in rows.ts
 * (the string path), which stays the reference: a record this path does not take as it is (a syntax
 * error, an unknown key, a control character in a string, bytes that are not UTF-8, a key set twice)
 * goes to the string path, which gives it the same row or the same error as before.
 *
 * Why: per record, the string path cost a decode, a slice per value, a join per row and an encode per
 * batch, about 2 µs a record (issue 4); here a flat record is one pass over its bytes and one copy.
 * Numbers, true/false and nested values are copied as byte ranges (PostgreSQL reads them exactly);
 * a string without escapes is copied as it is (valid JSON has no raw tab, newline or CR in a string,
 * and a backslash only as an escape, so there is nothing to escape for COPY); escapes are decoded here.
 */
import { isUtf8 } from 'node:buffer';
import { BACKSLASH, hexValue, IN_STRING, isJsonNumber, isNumberByte, QUOTE, scanFlags, skipValidValue, skipWsBytes } from './bytes.js';
import { RowBuilder, wholeRecordInto, type RowColumn } from './rows.js';
import { decodeString } from './scan.js';

/** The rows of a batch, written into one Buffer that grows only for a record bigger than the slack. */
export class RowWriter {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  private readonly capacity: number;

  /** `size`: the batch size the caller flushes at (rows are written until the length passes it). */
  constructor(size: number) {
    this.capacity = size + Math.max(64 * 1024, size >> 4);
  }

  /** Bytes written. */
  get length(): number {
    return this.pos;
  }

  /**
   * Buffers of loaded batches, given back to be written into again: a long import then reuses a few
   * buffers instead of allocating one per batch (which left the C heap holding freed batches: the
   * peak RSS of a 2 GB array was twice that of a 20 MB one).
   */
  private readonly spare: Buffer[] = [];

  /** Room for n more bytes. */
  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const size = Math.max(this.capacity, this.pos + n, this.pos > 0 ? 2 * this.buf.length : 0);
    const reused = this.pos === 0 ? this.spare.pop() : undefined;
    const next = reused !== undefined && reused.length >= size ? reused : Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  writeString(s: string): void {
    this.reserve(3 * s.length);
    this.pos += this.buf.write(s, this.pos);
  }

  /** The rows written so far, as one Buffer; the writer starts a new one. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    return out;
  }

  /** Give back a buffer take() returned, once nothing reads it any more (its batch is loaded). */
  recycle(taken: Buffer): void {
    const whole = Buffer.from(taken.buffer, taken.byteOffset, taken.buffer.byteLength - taken.byteOffset);
    if (whole.length >= this.capacity && this.spare.length < 8) this.spare.push(whole);
  }
}

const UNSET = 0;
const K_STRING = 1;
const K_NUMBER = 2; // also true and false: copied as written
const K_NULL = 3;
const K_NESTED = 4;

/** String flags: holds an escape; holds a raw control character (< 0x20). */
const F_ESCAPE = 1;
const F_CONTROL = 2;

/** Keys cached by their bytes at most (the cache of a stream of ever-new ignored keys must not grow forever). */
const MAX_CACHED_KEYS = 10_000;

/** Returned by the scan when the string path must take the record. */
const SLOW = -1;

export class ByteRowBuilder {
  private readonly n: number;
  private readonly json: Uint8Array;
  private readonly index = new Map<string, number>();
  private readonly byRawKey = new Map<string, number>();
  private readonly ignoreUnknown: boolean;
  /** This record's value of each column: kind, flags, and its bytes [start, end) in the record's buffer. */
  private readonly kind: Uint8Array;
  private readonly flags: Uint8Array;
  private readonly vStart: Int32Array;
  private readonly vEnd: Int32Array;
  /** The keys (bytes with quotes) met at each position of the previous record, and their columns. */
  private readonly orderKeys: Uint8Array[] = [];
  private readonly orderColumns: number[] = [];
  /** The string path, for the records this one does not take. */
  private readonly strings: RowBuilder;
  private readonly parts: string[] = [];
  /** The record scanned last has a byte >= 0x80 (so it must be checked to be UTF-8). */
  private high = false;

  constructor(columns: readonly RowColumn[], ignoreUnknown: boolean) {
    this.n = columns.length;
    columns.forEach((c, i) => this.index.set(c.name, i));
    this.json = Uint8Array.from(columns, (c) => (c.json ? 1 : 0));
    this.kind = new Uint8Array(this.n);
    this.flags = new Uint8Array(this.n);
    this.vStart = new Int32Array(this.n);
    this.vEnd = new Int32Array(this.n);
    this.ignoreUnknown = ignoreUnknown;
    this.strings = new RowBuilder(columns, ignoreUnknown);
  }

  /**
   * Write the row of the record b[start, end) (with its newline) to out. Throws what RowBuilder.rowInto
   * throws for a bad record (JsonSyntaxError, UnknownKeyError).
   */
  rowInto(b: Buffer, start: number, end: number, out: RowWriter): void {
    // Worst case: every byte escaped for COPY (2 bytes each), \N and a separator per column, a newline.
    out.reserve(2 * (end - start) + 3 * this.n + 1);
    const rowStart = out.pos;
    this.high = false;
    if (this.scan(b, start, end) !== SLOW && (!this.high || isUtf8(b.subarray(start, end))) && this.emit(b, out)) return;
    // emit() leaves every column unset again; a record given up on may have left some set.
    this.kind.fill(UNSET);
    out.pos = rowStart;
    this.slow(b, start, end, out);
  }

  private slow(b: Buffer, start: number, end: number, out: RowWriter): void {
    this.parts.length = 0;
    this.strings.rowInto(b.toString('utf8', start, end), this.parts);
    out.writeString(this.parts[0] as string);
  }

  /** The column of the key b[ks, ke) (quotes included): -1 to skip it, -2 to leave the record to the string path. */
  private columnOf(b: Buffer, ks: number, ke: number): number {
    const raw = b.toString('latin1', ks, ke);
    let i = this.byRawKey.get(raw);
    if (i === undefined) {
      let key: string;
      try {
        key = decodeString(b.toString('utf8', ks, ke));
      } catch {
        return -2;
      }
      i = this.index.get(key);
      if (i === undefined) {
        if (!this.ignoreUnknown) return -2;
        i = -1;
      }
      if (this.byRawKey.size < MAX_CACHED_KEYS) this.byRawKey.set(raw, i);
    }
    return i;
  }

  /** Scan the record's members into kind/flags/vStart/vEnd. Returns SLOW when the string path must take it. */
  private scan(b: Buffer, start: number, end: number): number {
    const kind = this.kind;
    let high = false;
    let i = skipWsBytes(b, start, end);
    if (i >= end || b[i] !== 123) return SLOW;
    i = skipWsBytes(b, i + 1, end);
    if (i >= end) return SLOW;
    if (b[i] === 125) return trailing(b, i + 1, end);
    for (let field = 0; ; field++) {
      // The key: mostly the one at this place in the previous record, compared in place (its bytes,
      // quotes included, end where that key ended); else scanned and looked up.
      if (b[i] !== QUOTE) return SLOW;
      const ks = i;
      let ke: number;
      let column: number;
      const expected = this.orderKeys[field];
      if (expected !== undefined && ks + expected.length <= end && sameBytes(b, ks, expected)) {
        ke = ks + expected.length;
        column = this.orderColumns[field] as number;
      } else {
        let j = i + 1;
        for (;;) {
          while (j < end && IN_STRING[b[j] as number] === 0) j++;
          if (j >= end) return SLOW;
          const k = IN_STRING[b[j] as number];
          if (k === 2) break;
          if (k === 3) {
            if ((b[j + 1] as number) >= 0x80) high = true;
            j += 2;
          } else {
            if (k === 4) high = true;
            j++;
          }
        }
        ke = j + 1;
        column = this.columnOf(b, ks, ke);
        if (column === -2) return SLOW;
        this.orderKeys[field] = b.subarray(ks, ke).slice();
        this.orderColumns[field] = column;
      }
      i = skipWsBytes(b, ke, end);
      if (i >= end || b[i] !== 58) return SLOW;
      i = skipWsBytes(b, i + 1, end);
      if (i >= end) return SLOW;
      // The value.
      const c = b[i] as number;
      let k: number;
      let f = 0;
      let ve: number;
      if (c === QUOTE) {
        let j = i + 1;
        for (;;) {
          while (j < end && IN_STRING[b[j] as number] === 0) j++;
          if (j >= end) return SLOW;
          const s = IN_STRING[b[j] as number];
          if (s === 2) break;
          if (s === 3) {
            f |= F_ESCAPE;
            if ((b[j + 1] as number) >= 0x80) high = true;
            j += 2;
          } else {
            if (s === 4) high = true;
            else f |= F_CONTROL;
            j++;
          }
        }
        ve = j + 1;
        k = K_STRING;
      } else if (c === 45 || (c >= 48 && c <= 57)) {
        let j = i + 1;
        while (j < end && isNumberByte(b[j] as number)) j++;
        if (!isJsonNumber(b, i, j)) return SLOW;
        ve = j;
        k = K_NUMBER;
      } else if (c === 123 || c === 91) {
        scanFlags.high = false;
        ve = skipValidValue(b, i, end);
        if (ve < 0) return SLOW;
        if (scanFlags.high) high = true;
        k = K_NESTED;
      } else if (c === 116 && i + 4 <= end && b[i + 1] === 114 && b[i + 2] === 117 && b[i + 3] === 101) {
        ve = i + 4;
        k = K_NUMBER;
      } else if (c === 102 && i + 5 <= end && b[i + 1] === 97 && b[i + 2] === 108 && b[i + 3] === 115 && b[i + 4] === 101) {
        ve = i + 5;
        k = K_NUMBER;
      } else if (c === 110 && i + 4 <= end && b[i + 1] === 117 && b[i + 2] === 108 && b[i + 3] === 108) {
        ve = i + 4;
        k = K_NULL;
      } else return SLOW;
      if (column >= 0) {
        // A key met twice: the string path checks the first value too (and may reject it).
        if (kind[column] !== UNSET) return SLOW;
        kind[column] = k;
        this.flags[column] = f;
        this.vStart[column] = i;
        this.vEnd[column] = ve;
      }
      i = skipWsBytes(b, ve, end);
      if (i >= end) return SLOW;
      if (b[i] === 125) {
        this.high = high;
        return trailing(b, i + 1, end);
      }
      if (b[i] !== 44) return SLOW;
      i = skipWsBytes(b, i + 1, end);
      if (i >= end) return SLOW;
    }
  }

  /** Write the scanned values in column order; false when a string turns out malformed (the string path says how). */
  private emit(b: Buffer, out: RowWriter): boolean {
    const o = out.buf;
    let p = out.pos;
    const { kind, json, flags, vStart, vEnd } = this;
    for (let col = 0; col < this.n; col++) {
      if (col > 0) o[p++] = 9;
      const k = kind[col];
      kind[col] = UNSET;
      if (k === UNSET || k === K_NULL) {
        o[p++] = BACKSLASH;
        o[p++] = 78;
      } else if (k === K_NUMBER) {
        p = copyBytes(b, vStart[col] as number, vEnd[col] as number, o, p);
      } else if (k === K_STRING && json[col] === 0) {
        const fl = flags[col] as number;
        if (fl === 0) p = copyBytes(b, (vStart[col] as number) + 1, (vEnd[col] as number) - 1, o, p);
        else if (fl & F_CONTROL) return false;
        else {
          p = unescapeForCopy(b, (vStart[col] as number) + 1, (vEnd[col] as number) - 1, o, p);
          if (p < 0) return false;
        }
      } else {
        // JSON text: a string into a json column, or an object or array into any column.
        p = copyEscaped(b, vStart[col] as number, vEnd[col] as number, o, p);
      }
    }
    o[p++] = 10;
    out.pos = p;
    return true;
  }
}

function trailing(b: Buffer, i: number, end: number): number {
  return skipWsBytes(b, i, end) === end ? i : SLOW;
}

function sameBytes(b: Buffer, at: number, expected: Uint8Array): boolean {
  for (let k = 0; k < expected.length; k++) if (b[at + k] !== expected[k]) return false;
  return true;
}

/** Copy src[s, e) to dst at p; returns the new p. Short ranges by hand: a native call costs more. */
export function copyBytes(src: Buffer, s: number, e: number, dst: Buffer, p: number): number {
  if (e - s > 64) return p + src.copy(dst, p, s, e);
  while (s < e) dst[p++] = src[s++] as number;
  return p;
}

/** Copy src[s, e) escaping backslash, tab, newline and CR for COPY text format (rows.ts copyEscape). */
export function copyEscaped(src: Uint8Array, s: number, e: number, dst: Buffer, p: number): number {
  for (; s < e; s++) {
    const c = src[s] as number;
    if (c === BACKSLASH) {
      dst[p++] = BACKSLASH;
      dst[p++] = BACKSLASH;
    } else if (c === 9) {
      dst[p++] = BACKSLASH;
      dst[p++] = 116;
    } else if (c === 10) {
      dst[p++] = BACKSLASH;
      dst[p++] = 110;
    } else if (c === 13) {
      dst[p++] = BACKSLASH;
      dst[p++] = 114;
    } else dst[p++] = c;
  }
  return p;
}

function hex4(src: Uint8Array, i: number): number {
  return (hexValue(src[i] as number) << 12) | (hexValue(src[i + 1] as number) << 8) | (hexValue(src[i + 2] as number) << 4) | hexValue(src[i + 3] as number);
}

function isHexByte(c: number | undefined): boolean {
  return c !== undefined && ((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102));
}

function isU4(src: Uint8Array, i: number, e: number): boolean {
  return i + 6 <= e && src[i] === BACKSLASH && src[i + 1] === 117 && isHexByte(src[i + 2]) && isHexByte(src[i + 3]) && isHexByte(src[i + 4]) && isHexByte(src[i + 5]);
}

/**
 * Decode the JSON string body src[s, e) (no raw control characters in it) and write it escaped for COPY,
 * as copyEscape(JSON.parse(...)) encoded to UTF-8 would be: a lone surrogate becomes U+FFFD, as
 * Buffer.from makes it. Returns the new p, or -1 for a malformed escape.
 */
export function unescapeForCopy(src: Uint8Array, s: number, e: number, dst: Buffer, p: number): number {
  while (s < e) {
    const c = src[s] as number;
    if (c !== BACKSLASH) {
      dst[p++] = c;
      s++;
      continue;
    }
    if (s + 1 >= e) return -1;
    const x = src[s + 1] as number;
    s += 2;
    switch (x) {
      case 34: // "
      case 47: // /
        dst[p++] = x;
        break;
      case 92:
        dst[p++] = BACKSLASH;
        dst[p++] = BACKSLASH;
        break;
      case 98: // b
        dst[p++] = 8;
        break;
      case 102: // f
        dst[p++] = 12;
        break;
      case 110:
        dst[p++] = BACKSLASH;
        dst[p++] = 110;
        break;
      case 114:
        dst[p++] = BACKSLASH;
        dst[p++] = 114;
        break;
      case 116:
        dst[p++] = BACKSLASH;
        dst[p++] = 116;
        break;
      case 117: {
        if (!isU4(src, s - 2, e)) return -1;
        let cp = hex4(src, s);
        s += 4;
        if (cp >= 0xd800 && cp <= 0xdbff && isU4(src, s, e)) {
          const lo = hex4(src, s + 2);
          if (lo >= 0xdc00 && lo <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            s += 6;
          }
        }
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; // a lone surrogate
        p = writeCodePoint(cp, dst, p);
        break;
      }
      default:
        return -1;
    }
  }
  return p;
}

function writeCodePoint(cp: number, dst: Buffer, p: number): number {
  if (cp < 0x80) {
    if (cp === BACKSLASH) {
      dst[p++] = BACKSLASH;
      dst[p++] = BACKSLASH;
    } else if (cp === 9) {
      dst[p++] = BACKSLASH;
      dst[p++] = 116;
    } else if (cp === 10) {
      dst[p++] = BACKSLASH;
      dst[p++] = 110;
    } else if (cp === 13) {
      dst[p++] = BACKSLASH;
      dst[p++] = 114;
    } else dst[p++] = cp;
  } else if (cp < 0x800) {
    dst[p++] = 0xc0 | (cp >> 6);
    dst[p++] = 0x80 | (cp & 0x3f);
  } else if (cp < 0x10000) {
    dst[p++] = 0xe0 | (cp >> 12);
    dst[p++] = 0x80 | ((cp >> 6) & 0x3f);
    dst[p++] = 0x80 | (cp & 0x3f);
  } else {
    dst[p++] = 0xf0 | (cp >> 18);
    dst[p++] = 0x80 | ((cp >> 12) & 0x3f);
    dst[p++] = 0x80 | ((cp >> 6) & 0x3f);
    dst[p++] = 0x80 | (cp & 0x3f);
  }
  return p;
}

/** --jsonb-column on bytes: the whole record into one column as JSON text (rows.ts wholeRecordInto). */
export function wholeRecordBytesInto(b: Buffer, start: number, end: number, out: RowWriter): void {
  out.reserve(2 * (end - start) + 1);
  const s = skipWsBytes(b, start, end);
  let e = end;
  while (e > s && isWs(b[e - 1] as number)) e--;
  scanFlags.high = false;
  if (s < e && skipValidValue(b, s, e) === e && (!scanFlags.high || isUtf8(b.subarray(start, end)))) {
    let p = copyEscaped(b, s, e, out.buf, out.pos);
    out.buf[p++] = 10;
    out.pos = p;
    return;
  }
  const parts: string[] = [];
  wholeRecordInto(b.toString('utf8', start, end), parts);
  out.writeString(parts.join(''));
}

function isWs(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

/**
 * A JSON object scanner that keeps every value's source text. JSON.parse turns 9007199254740993 into
 * 9007199254740992 and a 30-digit decimal into a double; here numbers (and nested objects and arrays)
 * travel as the text they were written as, and PostgreSQL reads them exactly. Strings are unescaped
 * with JSON.parse only when they hold an escape. Jumps with indexOf where it can, so flat records
 * cost a few native calls per field, not a JavaScript loop per character.
 *
 * Pure functions over strings; positions are UTF-16 indices into the string.
 */

export const enum Kind {
  String = 0,
  Number = 1,
  True = 2,
  False = 3,
  Null = 4,
  Object = 5,
  Array = 6,
}

export interface FieldSink {
  /**
   * One member of the object, as positions in `s`: the key's source text is s[keyStart, keyEnd) and
   * the value's s[valueStart, valueEnd) (strings with their quotes). Positions rather than strings:
   * keys repeat from record to record, and a sink that compares them in place (startsWith) allocates
   * nothing for them.
   */
  field(s: string, keyStart: number, keyEnd: number, kind: Kind, valueStart: number, valueEnd: number): void;
}

export class JsonSyntaxError extends Error {
  /** Index in the scanned string. */
  readonly pos: number;
  constructor(message: string, pos: number) {
    super(message);
    this.name = 'JsonSyntaxError';
    this.pos = pos;
  }
}

/** Returned when the text ends before the value does (more input may complete it). */
export const INCOMPLETE = -1;

const QUOTE = 34;
const BACKSLASH = 92;
const NUMBER_RE = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f]/;
/** A string body with neither an escape nor a control character: valid as it is, and COPY-safe. */
// eslint-disable-next-line no-control-regex
export const PLAIN_STRING_RE = /^[^\u0000-\u001f\\]*$/;

export function skipWs(s: string, i: number, end: number): number {
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) break;
    i++;
  }
  return i;
}

/** Index of the quote that closes a string whose body starts at `from`, or INCOMPLETE. */
export function stringEnd(s: string, from: number, end: number): number {
  let j = s.indexOf('"', from);
  while (j !== -1 && j < end) {
    let k = j - 1;
    let slashes = 0;
    while (k >= from && s.charCodeAt(k) === BACKSLASH) {
      slashes++;
      k--;
    }
    if (slashes % 2 === 0) return j;
    j = s.indexOf('"', j + 1);
  }
  return INCOMPLETE;
}

/** The value of a JSON string given its source text with quotes. */
export function decodeString(raw: string, pos = 0): string {
  const body = raw.slice(1, -1);
  if (body.indexOf('\\') === -1) {
    if (CONTROL_RE.test(body)) throw new JsonSyntaxError('control character inside a string', pos);
    return body;
  }
  try {
    return JSON.parse(raw) as string;
  } catch {
    throw new JsonSyntaxError('bad escape inside a string', pos);
  }
}

/**
 * End (exclusive) of the object or array starting at i, skipping strings; INCOMPLETE when cut off.
 * Brackets must pair up ({ with }, [ with ]); the grammar between them is checked by whoever parses
 * the value.
 */
function nestedEnd(s: string, i: number, end: number): number {
  const closers: number[] = [];
  for (let j = i; j < end; j++) {
    const c = s.charCodeAt(j);
    if (c === QUOTE) {
      const e = stringEnd(s, j + 1, end);
      if (e === INCOMPLETE) return INCOMPLETE;
      j = e;
    } else if (c === 123) {
      closers.push(125);
    } else if (c === 91) {
      closers.push(93);
    } else if (c === 125 || c === 93) {
      if (closers.pop() !== c) throw new JsonSyntaxError(`unexpected ${JSON.stringify(s[j])}`, j);
      if (closers.length === 0) return j + 1;
    }
  }
  return INCOMPLETE;
}

function isNumberChar(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46 || c === 101 || c === 69;
}

const LITERALS = [
  ['true', Kind.True],
  ['false', Kind.False],
  ['null', Kind.Null],
] as const;

export interface ScannedValue {
  kind: Kind;
  end: number;
}

/**
 * Scan one value at i (no leading whitespace). Returns its kind and end, INCOMPLETE (as end) when the
 * text stops first; throws JsonSyntaxError for malformed input. `atEof`: nothing more will come, so a
 * number or literal running to the end is complete.
 */
export function scanValue(s: string, i: number, end: number, atEof: boolean, validateNested = true): ScannedValue {
  return scanValueInto({ kind: Kind.Null, end: INCOMPLETE }, s, i, end, atEof, validateNested);
}

function result(out: ScannedValue, kind: Kind, end: number): ScannedValue {
  out.kind = kind;
  out.end = end;
  return out;
}

/** scanValue writing into `out` (one object per record, not one per value). */
function scanValueInto(out: ScannedValue, s: string, i: number, end: number, atEof: boolean, validateNested: boolean): ScannedValue {
  if (i >= end) return result(out, Kind.Null, INCOMPLETE);
  const c = s.charCodeAt(i);
  if (c === QUOTE) {
    const e = stringEnd(s, i + 1, end);
    if (e === INCOMPLETE) return result(out, Kind.String, INCOMPLETE);
    return result(out, Kind.String, e + 1);
  }
  if (c === 123 || c === 91) {
    const e = nestedEnd(s, i, end);
    if (e === INCOMPLETE) return result(out, c === 123 ? Kind.Object : Kind.Array, INCOMPLETE);
    // The depth scan skips strings but does not check the grammar inside; JSON.parse does (the
    // value itself still travels as its source text). A caller that scans the value again anyway
    // (the array cutter, whose elements the row builder scans) skips this.
    if (validateNested) {
      try {
        JSON.parse(s.slice(i, e));
      } catch (err) {
        throw new JsonSyntaxError(`not valid JSON: ${(err as Error).message}`, i);
      }
    }
    return result(out, c === 123 ? Kind.Object : Kind.Array, e);
  }
  if (c === 45 || (c >= 48 && c <= 57)) {
    let j = i + 1;
    while (j < end && isNumberChar(s.charCodeAt(j))) j++;
    if (j === end && !atEof) return result(out, Kind.Number, INCOMPLETE);
    if (!NUMBER_RE.test(s.slice(i, j))) throw new JsonSyntaxError(`malformed number ${JSON.stringify(s.slice(i, j))}`, i);
    return result(out, Kind.Number, j);
  }
  for (const [word, kind] of LITERALS) {
    if (s.startsWith(word, i)) return result(out, kind, i + word.length);
    if (end - i < word.length && word.startsWith(s.slice(i, end)) && !atEof) return result(out, kind, INCOMPLETE);
  }
  throw new JsonSyntaxError(`unexpected ${JSON.stringify(s[i])}`, i);
}

/**
 * Scan the object starting at i (s[i] must be '{'), reporting each member to sink. Returns the index
 * just after the closing brace, or INCOMPLETE.
 */
export function scanObject(s: string, i: number, end: number, sink: FieldSink, atEof = true): number {
  if (s.charCodeAt(i) !== 123) throw new JsonSyntaxError(`expected an object, found ${JSON.stringify(s[i] ?? 'the end')}`, i);
  let j = skipWs(s, i + 1, end);
  if (j >= end) return INCOMPLETE;
  if (s.charCodeAt(j) === 125) return j + 1;
  const v: ScannedValue = { kind: Kind.Null, end: INCOMPLETE };
  for (;;) {
    if (j >= end) return INCOMPLETE;
    if (s.charCodeAt(j) !== QUOTE) throw new JsonSyntaxError(`expected a key in quotes, found ${JSON.stringify(s[j])}`, j);
    const ke = stringEnd(s, j + 1, end);
    if (ke === INCOMPLETE) return INCOMPLETE;
    const ks = j;
    j = skipWs(s, ke + 1, end);
    if (j >= end) return INCOMPLETE;
    if (s.charCodeAt(j) !== 58) throw new JsonSyntaxError(`expected ':' after the key ${s.slice(ks, ke + 1)}`, j);
    j = skipWs(s, j + 1, end);
    scanValueInto(v, s, j, end, atEof, true);
    if (v.end === INCOMPLETE) return INCOMPLETE;
    sink.field(s, ks, ke + 1, v.kind, j, v.end);
    j = skipWs(s, v.end, end);
    if (j >= end) return INCOMPLETE;
    const c = s.charCodeAt(j);
    if (c === 125) return j + 1;
    if (c !== 44) throw new JsonSyntaxError(`expected ',' or '}', found ${JSON.stringify(s[j])}`, j);
    j = skipWs(s, j + 1, end);
  }
}

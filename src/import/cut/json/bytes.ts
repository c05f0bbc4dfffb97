/**
 * JSON scanning on bytes (UTF-8 input as read, no decoding to strings): the primitives of the byte
 * converter (byte-rows.ts) and the byte cutters (records.ts). Decoding a few hundred MB to strings,
 * slicing them per value and encoding the rows back to bytes cost most of the time of a JSON import
 * (issue 4); here values travel as byte ranges.
 *
 * Every function here only says "valid" or "not valid" (-1): the exact message of an error comes from
 * the string path (scan.ts, rows.ts), which the byte path hands such records to.
 */

export const WS_SPACE = 32;
export const WS_TAB = 9;
export const LF = 10;
export const CR = 13;
export const QUOTE = 34;
export const BACKSLASH = 92;

/** JSON whitespace: space, tab, newline, carriage return (JSON.parse accepts no other). */
export function skipWsBytes(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i] as number;
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) break;
    i++;
  }
  return i;
}

/**
 * Byte classes inside a string: 0 an ordinary byte, 1 a control byte (< 0x20: invalid raw in JSON),
 * 2 the quote, 3 a backslash, 4 a byte of a multibyte UTF-8 sequence (>= 0x80).
 */
export const IN_STRING = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) IN_STRING[c] = 1;
IN_STRING[QUOTE] = 2;
IN_STRING[BACKSLASH] = 3;
for (let c = 0x80; c < 0x100; c++) IN_STRING[c] = 4;

export function isNumberByte(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46 || c === 101 || c === 69;
}

/** Whether b[i, end) is exactly one JSON number (scan.ts NUMBER_RE: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?). */
export function isJsonNumber(b: Uint8Array, i: number, end: number): boolean {
  if (i < end && b[i] === 45) i++;
  if (i >= end) return false;
  let c = b[i] as number;
  if (c === 48) i++;
  else if (c >= 49 && c <= 57) {
    i++;
    while (i < end && (c = b[i] as number) >= 48 && c <= 57) i++;
  } else return false;
  if (i < end && b[i] === 46) {
    i++;
    const digits = i;
    while (i < end && (c = b[i] as number) >= 48 && c <= 57) i++;
    if (i === digits) return false;
  }
  if (i < end && ((c = b[i] as number) === 101 || c === 69)) {
    i++;
    if (i < end && ((c = b[i] as number) === 43 || c === 45)) i++;
    const digits = i;
    while (i < end && (c = b[i] as number) >= 48 && c <= 57) i++;
    if (i === digits) return false;
  }
  return i === end;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

export function hexValue(c: number): number {
  return c <= 57 ? c - 48 : (c | 0x20) - 87;
}

/** Set when a scan met a byte >= 0x80 (the caller then checks that the record is valid UTF-8). */
export const scanFlags = { high: false };

/**
 * End (just after the closing quote) of the string whose opening quote is at i, checking what JSON.parse
 * checks (no raw control characters; escapes \" \\ \/ \b \f \n \r \t \uXXXX), or -1.
 */
export function skipValidString(b: Uint8Array, i: number, end: number): number {
  let j = i + 1;
  for (;;) {
    while (j < end && IN_STRING[b[j] as number] === 0) j++;
    if (j >= end) return -1;
    const k = IN_STRING[b[j] as number];
    if (k === 2) return j + 1;
    if (k === 4) {
      scanFlags.high = true;
      j++;
    } else if (k === 3) {
      const e = b[j + 1];
      if (e === 117) {
        if (j + 5 >= end || !isHex(b[j + 2] as number) || !isHex(b[j + 3] as number) || !isHex(b[j + 4] as number) || !isHex(b[j + 5] as number)) return -1;
        j += 6;
      } else if (e === 34 || e === 92 || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116) j += 2;
      else return -1;
    } else return -1; // a raw control character
  }
}

const OBJECT = 1;
const ARRAY = 2;

/**
 * End of the JSON value starting at i (no leading whitespace), validated as JSON.parse would, or -1
 * (malformed, or cut off before `end`). Iterative, so deep nesting cannot overflow the call stack.
 */
export function skipValidValue(b: Uint8Array, i: number, end: number): number {
  const stack: number[] = [];
  for (;;) {
    // A value at i.
    i = skipWsBytes(b, i, end);
    if (i >= end) return -1;
    let c = b[i] as number;
    if (c === 123 || c === 91) {
      const j = skipWsBytes(b, i + 1, end);
      if (j >= end) return -1;
      if (b[j] === (c === 123 ? 125 : 93)) {
        i = j + 1;
      } else {
        stack.push(c === 123 ? OBJECT : ARRAY);
        if (c === 123) {
          i = key(b, j, end);
          if (i < 0) return -1;
        } else i = j;
        continue;
      }
    } else if (c === QUOTE) {
      i = skipValidString(b, i, end);
      if (i < 0) return -1;
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      let j = i + 1;
      while (j < end && isNumberByte(b[j] as number)) j++;
      if (!isJsonNumber(b, i, j)) return -1;
      i = j;
    } else if (c === 116) {
      if (i + 4 > end || b[i + 1] !== 114 || b[i + 2] !== 117 || b[i + 3] !== 101) return -1;
      i += 4;
    } else if (c === 102) {
      if (i + 5 > end || b[i + 1] !== 97 || b[i + 2] !== 108 || b[i + 3] !== 115 || b[i + 4] !== 101) return -1;
      i += 5;
    } else if (c === 110) {
      if (i + 4 > end || b[i + 1] !== 117 || b[i + 2] !== 108 || b[i + 3] !== 108) return -1;
      i += 4;
    } else return -1;
    // After a value: close containers, or go on to the next member.
    for (;;) {
      if (stack.length === 0) return i;
      i = skipWsBytes(b, i, end);
      if (i >= end) return -1;
      c = b[i] as number;
      const top = stack[stack.length - 1];
      if (c === 44) {
        if (top === OBJECT) {
          i = key(b, skipWsBytes(b, i + 1, end), end);
          if (i < 0) return -1;
        } else i++;
        break;
      }
      if (c === (top === OBJECT ? 125 : 93)) {
        stack.pop();
        i++;
        continue;
      }
      return -1;
    }
  }
}

/** A member's key and colon at i; returns where its value starts (whitespace not skipped), or -1. */
function key(b: Uint8Array, i: number, end: number): number {
  if (i >= end || b[i] !== QUOTE) return -1;
  i = skipValidString(b, i, end);
  if (i < 0) return -1;
  i = skipWsBytes(b, i, end);
  if (i >= end || b[i] !== 58) return -1;
  return i + 1;
}

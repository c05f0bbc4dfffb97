/**
 * Column type inference for --create. A type is chosen only when every sampled value fits it AND
 * comes back out of PostgreSQL meaning the same thing: `00501` (a zip code), `+5`, ` 7`, `1_000`,
 * `1e3` or `.5` are not numbers here, because the database would give them back as different text.
 * NULLs do not decide a type; a column with no non-null value is text.
 */

export type InferredType = 'bigint' | 'numeric' | 'boolean' | 'date' | 'timestamp' | 'timestamptz' | 'jsonb' | 'text';

const INT_RE = /^-?(0|[1-9][0-9]*)$/;
const DEC_RE = /^-?(0|[1-9][0-9]*)\.[0-9]+$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const DATE_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
// ISO 8601 as PostgreSQL reads it back unchanged in meaning: date, T or space, time, optional fraction, optional zone.
const TS_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?$/;

function isNegativeZero(v: string): boolean {
  return v.startsWith('-') && /^-[0.]+$/.test(v);
}

export function fitsBigint(v: string): boolean {
  if (!INT_RE.test(v) || isNegativeZero(v)) return false;
  const n = BigInt(v);
  return n >= INT64_MIN && n <= INT64_MAX;
}

export function fitsNumeric(v: string): boolean {
  // numeric keeps the scale as written (1.50 stays 1.50), but has no negative zero.
  return (INT_RE.test(v) || DEC_RE.test(v)) && !isNegativeZero(v);
}

export function fitsBoolean(v: string): boolean {
  const l = v.toLowerCase();
  return (l === 'true' || l === 'false') && (v === l || v === l.toUpperCase() || v === l[0]?.toUpperCase() + l.slice(1));
}

function validDate(y: number, m: number, d: number): boolean {
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  const days = new Date(Date.UTC(2000, m, 0)).getUTCDate(); // days in month m of a leap year
  if (d > days) return false;
  if (m === 2 && d === 29) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  return true;
}

export function fitsDate(v: string): boolean {
  const m = DATE_RE.exec(v);
  return m !== null && validDate(Number(m[1]), Number(m[2]), Number(m[3]));
}

/** 'timestamptz' when the value names its zone, 'timestamp' when not, undefined when it is no timestamp. */
export function timestampKind(v: string): 'timestamp' | 'timestamptz' | undefined {
  const m = TS_RE.exec(v);
  if (!m) return undefined;
  if (!validDate(Number(m[1]), Number(m[2]), Number(m[3]))) return undefined;
  if (Number(m[4]) > 23 || Number(m[5]) > 59 || (m[6] !== undefined && Number(m[6]) > 59)) return undefined;
  const zone = m[8];
  if (zone !== undefined && zone !== 'Z') {
    const hours = Number(zone.slice(1, 3));
    const minutes = zone.length > 3 ? Number(zone.slice(-2)) : 0;
    if (hours > 15 || minutes > 59) return undefined;
  }
  return zone === undefined ? 'timestamp' : 'timestamptz';
}

export function fitsJson(v: string): boolean {
  const c = v.trimStart()[0];
  if (c !== '{' && c !== '[') return false;
  try {
    JSON.parse(v);
    return true;
  } catch {
    return false;
  }
}

const ORDER: InferredType[] = ['bigint', 'numeric', 'boolean', 'date', 'timestamp', 'timestamptz', 'jsonb'];

const FITS: Record<Exclude<InferredType, 'text'>, (v: string) => boolean> = {
  bigint: fitsBigint,
  numeric: fitsNumeric,
  boolean: fitsBoolean,
  date: fitsDate,
  timestamp: (v) => timestampKind(v) === 'timestamp',
  timestamptz: (v) => timestampKind(v) === 'timestamptz',
  jsonb: fitsJson,
};

/** The narrowest type every non-null value fits; text when none or when there are no values. */
export function inferType(values: Iterable<string | null>): InferredType {
  let candidates = new Set(ORDER);
  let seen = false;
  for (const v of values) {
    if (v === null) continue;
    seen = true;
    for (const t of candidates) {
      if (!FITS[t as Exclude<InferredType, 'text'>](v)) candidates.delete(t);
    }
    if (candidates.size === 0) return 'text';
  }
  if (!seen) return 'text';
  for (const t of ORDER) if (candidates.has(t)) return t;
  return 'text';
}

/** Types for each column of sampled rows (rows may be ragged; missing fields count as NULL). */
export function inferTypes(columnCount: number, rows: readonly (readonly (string | null)[])[]): InferredType[] {
  const out: InferredType[] = [];
  for (let c = 0; c < columnCount; c++) {
    out.push(inferType(rows.map((r) => (c < r.length ? (r[c] as string | null) : null))));
  }
  return out;
}

/**
 * Random CSV inputs for differential tests: quotes, doubled quotes, delimiters and LF/CRLF/CR inside
 * quotes, multibyte characters, empty vs "" fields, a missing final newline, very long fields.
 * Deterministic for a seed.
 */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // xorshift32
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

const PLAIN = ['a', 'b', 'hello', 'x y', '42', '-7', '3.14', 'naïve', '日本語', '😀', 'tab\there', 'back\\slash', ''];
const QUOTED_PARTS = ['a', ',', '""', '\n', '\r\n', '\r', ' ', 'é', '𝄞', '\\', 'text'];

export interface GenOptions {
  rows: number;
  cols: number;
  eol: '\n' | '\r\n' | '\r';
  finalNewline: boolean;
  bom: boolean;
  longField?: number;
  /** Allow CR or LF inside quoted fields (only PostgreSQL-acceptable with matching eol rules). */
  newlinesInQuotes: boolean;
}

export function field(r: () => number, o: GenOptions): string {
  const k = r();
  if (k < 0.5) {
    const v = PLAIN[Math.floor(r() * PLAIN.length)] as string;
    return v;
  }
  if (k < 0.55) return '""';
  let inner = '';
  const n = 1 + Math.floor(r() * 5);
  for (let i = 0; i < n; i++) {
    let p = QUOTED_PARTS[Math.floor(r() * QUOTED_PARTS.length)] as string;
    if (!o.newlinesInQuotes && /[\r\n]/.test(p)) p = 'z';
    inner += p;
  }
  return `"${inner}"`;
}

export function generateCsv(seed: number, o: GenOptions): { text: string; header: string[] } {
  const r = rng(seed);
  const header = Array.from({ length: o.cols }, (_, i) => `c${i}`);
  const lines: string[] = [header.join(',')];
  for (let i = 0; i < o.rows; i++) {
    const fields: string[] = [];
    for (let c = 0; c < o.cols; c++) fields.push(field(r, o));
    if (o.longField !== undefined && i === Math.floor(o.rows / 2)) fields[0] = `"${'L'.repeat(o.longField)},""x"""`;
    lines.push(fields.join(','));
  }
  let text = lines.join(o.eol);
  if (o.finalNewline) text += o.eol;
  if (o.bom) text = '\uFEFF' + text;
  return { text, header };
}

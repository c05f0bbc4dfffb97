/**
 * Parsing option values: sizes (64KB, 8MB, 1GB), counts, choices. Pure; throws usage errors.
 */
import { usage } from '../errors.js';
import type { NodesOption } from '../import/options.js';

const UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  K: 1024,
  KB: 1024,
  KIB: 1024,
  M: 1024 ** 2,
  MB: 1024 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GB: 1024 ** 3,
  GIB: 1024 ** 3,
  T: 1024 ** 4,
  TB: 1024 ** 4,
  TIB: 1024 ** 4,
};

/** "8MB" → 8388608. Units are binary (KB = 1024 bytes), as in PostgreSQL's own settings. */
export function parseSize(value: string, flag: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? UNITS[(m[2] ?? '').toUpperCase()] : undefined;
  if (!m || unit === undefined) throw usage(`${flag} takes a size such as 64KB, 8MB or 1GB, not '${value}'`);
  const n = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n) || n <= 0) throw usage(`${flag} must be a positive size, not '${value}'`);
  return n;
}

export function parsePositiveInt(value: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\s*[0-9]+\s*$/.test(value)) throw usage(`${flag} takes a whole number, not '${value}'`);
  const n = Number(value);
  if (n < 1 || n > max) throw usage(`${flag} must be between 1 and ${max}, not ${value}`);
  return n;
}

export function parseNonNegativeInt(value: string, flag: string): number {
  if (!/^\s*[0-9]+\s*$/.test(value)) throw usage(`${flag} takes a whole number, not '${value}'`);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw usage(`${flag} is too large: ${value}`);
  return n;
}

export function parseChoice<T extends string>(value: string, choices: readonly T[], flag: string): T {
  if (!(choices as readonly string[]).includes(value)) throw usage(`${flag} must be one of ${choices.join(', ')}, not '${value}'`);
  return value as T;
}

/** A one-character option; accepts escapes people type in shells: \t, tab, comma. */
export function parseChar(value: string, flag: string): string {
  const named: Record<string, string> = { '\\t': '\t', tab: '\t', comma: ',', pipe: '|', semicolon: ';' };
  const v = named[value] ?? value;
  if ([...v].length !== 1) throw usage(`${flag} takes a single character, not '${value}'`);
  return v;
}

export function parseColumnList(value: string, flag = '--columns'): string[] {
  const cols = value.split(',').map((c) => c.trim());
  if (cols.some((c) => c === '')) throw usage(`${flag} takes a comma-separated list of names, not '${value}'`);
  return cols;
}

/** --nodes auto|none|URL,URL. */
export function nodesOption(value: string | undefined): NodesOption {
  if (value === undefined || value === 'auto') return { kind: 'auto' };
  if (value === 'none') return { kind: 'none' };
  const urls = value.split(',').map((u) => u.trim());
  if (urls.some((u) => !/^postgres(ql)?:\/\//.test(u))) throw usage(`--nodes takes auto, none, or postgresql:// URLs separated by commas, not '${value}'`);
  return { kind: 'urls', urls };
}

export { formatFromPath } from '../io/formats.js';

/** Default table name from an input path: `data/Users 2024.csv.gz` → `users_2024`. */
export function tableFromPath(path: string): string | undefined {
  if (path === '-') return undefined;
  const base = path.split(/[\\/]/).pop() ?? '';
  const stem = base.replace(/\.gz$/i, '').replace(/\.[^.]*$/, '');
  const name = stem.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  if (name === '') return undefined;
  return /^[0-9]/.test(name) ? `t_${name}` : name;
}

/**
 * The command `args` name: their first operand, past the global options (and the values of those
 * that take one, `valued`: the program's own options say which).
 */
export function commandName(args: readonly string[], valued: ReadonlySet<string>): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (valued.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * SQL identifiers. Every name dataio puts into SQL goes through quoteIdent, so a column called
 * `select` or `a"b` works.
 */
import { usage } from '../errors.js';

export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw usage(`an identifier cannot contain a NUL character: ${JSON.stringify(name)}`);
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
  if (value.includes('\u0000')) throw usage(`a value cannot contain a NUL character: ${JSON.stringify(value)}`);
  return `'${value.replace(/'/g, "''")}'`;
}

export interface TableName {
  schema?: string;
  name: string;
}

/**
 * Parse `--table` the way PostgreSQL reads a name: `t`, `s.t`, `"My Table"`, `"s"."a.b"`.
 * Unquoted parts fold to lower case; quoted parts are kept as written.
 */
export function parseTableName(input: string): TableName {
  const parts: string[] = [];
  let i = 0;
  const s = input.trim();
  while (i <= s.length) {
    let part = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw usage(`unterminated quoted name in --table ${JSON.stringify(input)}`);
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            part += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += s[i++];
      }
    } else {
      const start = i;
      while (i < s.length && s[i] !== '.') i++;
      part = s.slice(start, i).trim().toLowerCase();
      if (part.includes('"')) throw usage(`bad table name ${JSON.stringify(input)}`, 'quote a part that holds special characters: "My Table"');
    }
    if (part === '') throw usage(`bad table name ${JSON.stringify(input)}`, 'write it as table or schema.table');
    parts.push(part);
    if (i >= s.length) break;
    if (s[i] !== '.') throw usage(`bad table name ${JSON.stringify(input)}`, 'write it as table or schema.table');
    i++;
  }
  if (parts.length === 1) return { name: parts[0] as string };
  if (parts.length === 2) return { schema: parts[0] as string, name: parts[1] as string };
  throw usage(`bad table name ${JSON.stringify(input)}`, 'write it as table or schema.table');
}

export function qualifiedName(t: TableName): string {
  return t.schema === undefined ? quoteIdent(t.name) : `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
}

/** For messages: the name as a user would type it. */
export function displayName(t: TableName): string {
  const show = (p: string) => (/^[a-z_][a-z0-9_$]*$/.test(p) ? p : quoteIdent(p));
  return t.schema === undefined ? show(t.name) : `${show(t.schema)}.${show(t.name)}`;
}

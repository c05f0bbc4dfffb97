/**
 * A table with every kind of value an export must keep: text with newlines, tabs, backslashes,
 * quotes and characters beyond the BMP, NULL next to empty strings and the string "NULL", bigint
 * extremes, 30-digit numerics, NaN and infinities, dates, timestamps, uuid, jsonb, json with raw
 * newlines (kept as written by the server), text[] and bytea.
 */
import type { TestServer } from '../support/env.js';
import { query } from '../support/env.js';

export const TYPED_COLUMNS =
  'id int PRIMARY KEY, txt text, big bigint, num numeric, dbl double precision, flag boolean, day date, ' +
  'at timestamptz, uid uuid, doc jsonb, tags text[], raw bytea, js json';

export const TYPED_ROWS = `
  (1, E'line1\\nline2\\r\\n\\ttab \\\\ backslash "quoted" ''single'' , comma 😀 𝄞 é', 9223372036854775807,
      123456789012345678901234567890, 'NaN', true, '2024-02-29', '2024-02-02 01:01:01.123456+00',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '{"a": [1, 2.50, {"b": null}], "big": 12345678901234567890123, "s": "x\\"y\\\\z\\n"}',
      ARRAY['a', 'b c', NULL, 'd"e', 'f,g', '', 'NULL'], '\\x00ff105c0a'::bytea, E'{"k":\\n [1,\\r\\n 2],\\t"t": "\\\\n"}'),
  (2, '', -9223372036854775808, -0.000000000000000000000000000001, 'Infinity', false, '0001-01-01',
      '1970-01-01 00:00:00+00', '00000000-0000-0000-0000-000000000000', '[]', '{}', '\\x'::bytea, '[]'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, E'\\\\.', 0, 1234567890.12345678901234567890, '-Infinity', true, 'infinity', '-infinity',
      'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', ARRAY[NULL]::text[], '\\x5c2e'::bytea, 'null'),
  (5, 'NULL', 1, 'NaN', 1.7976931348623157e308, false, '2000-01-01', '2000-01-01 12:00:00+05:30',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '"str"', ARRAY['x'], '\\xdeadbeef'::bytea, '"s"'),
  (6, E'\\\\N', -1, 0.1, -0.0, true, '1999-12-31', '1999-12-31 23:59:59.999999+00',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13', '{"nested": {"deep": [[], {}]}}', ARRAY['"', '\\\\'], '\\x00'::bytea, '{}')`;

export async function createTypedTable(server: TestServer, name: string): Promise<void> {
  await query(server, `CREATE TABLE ${name} (${TYPED_COLUMNS})`);
  await query(server, `INSERT INTO ${name} VALUES ${TYPED_ROWS}`);
  await query(server, `ANALYZE ${name}`);
}

/**
 * A fingerprint of a table's rows in id order, as the server renders them. `asJson`: what JSON can
 * carry: a json value's whitespace is not kept on one line, and a json `null` and an SQL NULL are the
 * same JSON `null`.
 */
export async function fingerprint(server: TestServer, name: string, asJson = false): Promise<string> {
  const cols = asJson
    ? `id, txt, big, num, dbl, flag, day, at, uid, nullif(doc, 'null'), tags, raw, nullif(js::jsonb, 'null')`
    : 'id, txt, big, num, dbl, flag, day, at, uid, doc, tags, raw, js';
  const r = await query<{ fp: string; n: string }>(
    server,
    `SELECT md5(string_agg(ROW(${cols})::text, E'\\n' ORDER BY id)) AS fp, count(*) AS n FROM ${name}`,
  );
  return `${r[0]?.n}:${r[0]?.fp}`;
}

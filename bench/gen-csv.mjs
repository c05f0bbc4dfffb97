// Generates the benchmark table's rows (DESIGN.md): id bigint, name text, category text,
// value double precision, created_at timestamptz, description text; about 78 bytes a CSV row, every
// 7th description quoted with a comma and doubled quotes. Deterministic; the same rows in each format.
// Usage: node bench/gen-csv.mjs ROWS OUT [csv|ndjson|json]
import { createWriteStream } from 'node:fs';

const rows = Number(process.argv[2] ?? 2_000_000);
const out = process.argv[3] ?? 'bench/data/bench.csv';
const format = process.argv[4] ?? 'csv';
const cats = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
const ws = createWriteStream(out, { highWaterMark: 1 << 20 });
let seed = 42;
const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
if (format === 'csv') ws.write('id,name,category,value,created_at,description\n');
if (format === 'json') ws.write('[\n');
let buf = '';
for (let i = 1; i <= rows; i++) {
  const day = 1 + (i % 28);
  const month = 1 + (i % 12);
  const ts = `2024-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}T${String(i % 24).padStart(2, '0')}:01:01Z`;
  const value = (rand() * 1000).toFixed(4);
  const desc = i % 7 === 0 ? `has, comma and "quote" ${i}` : `plain text ${i}`;
  if (format === 'csv') {
    const field = i % 7 === 0 ? `"${desc.replace(/"/g, '""')}"` : desc;
    buf += `${i},name_${i},${cats[i % 5]},${value},${ts},${field}\n`;
  } else {
    const rec = `{"id":${i},"name":"name_${i}","category":"${cats[i % 5]}","value":${value},"created_at":"${ts}","description":${JSON.stringify(desc)}}`;
    buf += format === 'json' ? `${i > 1 ? ',\n' : ''}${rec}` : `${rec}\n`;
  }
  if (buf.length > 1 << 20) {
    if (!ws.write(buf)) await new Promise((r) => ws.once('drain', r));
    buf = '';
  }
}
if (format === 'json') buf += '\n]\n';
ws.write(buf);
ws.end();
await new Promise((r) => ws.on('finish', r));

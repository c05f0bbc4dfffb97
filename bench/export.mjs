// Export speed, side by side with psql in the same run: `node bench/export.mjs [rows] [rounds]`.
//
// Starts its own embedded PostgreSQL 18 (scripts/pg-servers.mjs), builds the benchmark table of
// DESIGN.md inside it (bench/gen-table.mjs), then runs each contender once per round, alternating,
// with the order reversed every other round, output to /dev/null; prints the medians and the ratios
// to psql as a markdown table, and stops the server. The machine is shared and noisy: only the
// ratios within one run mean anything. Needs a build (`npm run build`) and psql on the PATH.
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { startServers, stopServers } from '../scripts/pg-servers.mjs';
import { generateBenchTable } from './gen-table.mjs';

const root = new URL('..', import.meta.url).pathname;
const rows = Number(process.argv[2] ?? 2_000_000);
const rounds = Number(process.argv[3] ?? 3);
const table = 'bench_export';

if (!existsSync(join(root, 'dist/src/cli/main.js'))) {
  console.error('bench/export.mjs: build first (npm run build)');
  process.exit(2);
}

/** Run a command with stdout to /dev/null; resolves to the wall-clock seconds. */
function timed(cmd, args) {
  return new Promise((resolve, reject) => {
    const devnull = openSync('/dev/null', 'w');
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', devnull, 'pipe'], env: { ...process.env, PGCLIENTENCODING: 'UTF8' } });
    closeSync(devnull);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const secs = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve(secs);
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const servers = await startServers({ only: ['pg18-embedded'] });
try {
  const url = servers[0].url;
  const psql = (copy) => ['psql', [url, '-X', '-q', '-c', copy]];
  const dataio = (...args) => [join(root, 'bin/dataio'), ['export', '--table', table, '--db', url, '--progress', 'none', ...args]];
  console.error(`generating ${rows.toLocaleString('en-US')} rows…`);
  await generateBenchTable(url, rows, table);

  // Each group: a psql baseline and the dataio runs compared with it.
  const groups = [
    {
      name: 'CSV',
      target: 1.1,
      baseline: ['psql `\\copy t to stdout (format csv, header)`', ...psql(`\\copy ${table} to stdout (format csv, header)`)],
      others: [
        ['dataio export --format csv (defaults)', ...dataio('--format', 'csv')],
        ['dataio export --format csv --workers 1', ...dataio('--format', 'csv', '--workers', '1')],
        ['dataio export --format csv --workers 2', ...dataio('--format', 'csv', '--workers', '2')],
      ],
    },
    {
      name: 'NDJSON',
      target: 1.25,
      baseline: ['psql `\\copy (select row_to_json(t) from t) to stdout`', ...psql(`\\copy (select row_to_json(t) from ${table} t) to stdout`)],
      others: [
        // The alternative to un-escaping text format in Node (src/export/json-rows.ts), server side only:
        // a CSV COPY with control-byte QUOTE/DELIMITER, which would need no un-escaping.
        ['psql, same as CSV with quote e\'\\x01\', delimiter e\'\\x02\' (alternative, not used)', ...psql(`\\copy (select row_to_json(t) from ${table} t) to stdout (format csv, quote e'\\x01', delimiter e'\\x02')`)],
        ['dataio export --format ndjson (defaults)', ...dataio('--format', 'ndjson')],
        ['dataio export --format ndjson --workers 1', ...dataio('--format', 'ndjson', '--workers', '1')],
        ['dataio export --format ndjson --workers 2', ...dataio('--format', 'ndjson', '--workers', '2')],
      ],
    },
  ];

  const times = new Map();
  for (let round = 0; round < rounds; round++) {
    for (const g of groups) {
      const runs = [g.baseline, ...g.others];
      if (round % 2 === 1) runs.reverse();
      for (const [label, cmd, args] of runs) {
        const secs = await timed(cmd, args);
        times.set(label, [...(times.get(label) ?? []), secs]);
        console.error(`round ${round + 1}: ${label}: ${secs.toFixed(2)} s`);
      }
    }
  }

  const lines = [
    `Export of ${rows.toLocaleString('en-US')} rows of the benchmark table, embedded PostgreSQL 18, ${rounds} rounds alternating, medians:`,
    '',
    '| format | command | runs (s) | median (s) | × psql (medians) | × psql (median of the rounds\' ratios) | target |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const g of groups) {
    const baseTimes = times.get(g.baseline[0]);
    const base = median(baseTimes);
    for (const [label] of [g.baseline, ...g.others]) {
      const ts = times.get(label);
      const m = median(ts);
      const ratio = m / base;
      // Runs of one round are seconds apart, so their ratio is less exposed to the load drifting.
      const roundRatio = median(ts.map((t, i) => t / baseTimes[i]));
      const isDataio = label.startsWith('dataio');
      const verdict = !isDataio ? '' : ratio <= g.target ? `≤ ${g.target} ✓` : `≤ ${g.target} ✗`;
      lines.push(
        `| ${g.name} | ${label} | ${ts.map((t) => t.toFixed(2)).join(', ')} | ${m.toFixed(2)} | ${ratio.toFixed(2)} | ${roundRatio.toFixed(2)} | ${verdict} |`,
      );
    }
  }
  console.log(lines.join('\n'));
} finally {
  await stopServers(servers);
}

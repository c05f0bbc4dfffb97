// `npm run bench -- export-citus`: export of a hash-distributed table (32 shards) on a Citus 13.2
// cluster (coordinator + 2 workers on this machine, PostgreSQL 15, started by scripts/pg-servers.mjs
// startTiers), dataio side by side with psql's `\copy (select …) to stdout` through the coordinator,
// in the same run, alternating (order reversed every other round), output to /dev/null; prints the
// medians and the ratios to psql. Skipped when Citus is not installed here. The machine is shared and
// noisy: only the ratios within one run mean anything. Needs a build (`npm run build`) and psql.
// Env: CITUS_ROWS (default 1000000), ROUNDS (default 3).
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startTiers, stopAll } from '../scripts/pg-servers.mjs';
import { generateBenchTable } from './gen-table.mjs';
import { timed } from './timed.mjs';

const root = new URL('..', import.meta.url).pathname;
const ROWS = Number(process.env.CITUS_ROWS ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const table = 'bench_export';

if (!existsSync(join(root, 'dist/src/cli/main.js'))) {
  console.error('bench/export-citus.mjs: build first (npm run build)');
  process.exit(2);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function q(url, sql, params = []) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Seconds of one run with stdout to /dev/null; dataio's --json summary (stderr) when it gives one. */
async function run(cmd, args) {
  const devnull = openSync('/dev/null', 'w');
  try {
    const r = await timed(cmd, args, { stdio: ['ignore', devnull, 'pipe'], env: { ...process.env, PGCLIENTENCODING: 'UTF8' } });
    const last = r.err.trim().split('\n').pop() ?? '';
    return { secs: r.secs, summary: last.startsWith('{') ? JSON.parse(last) : undefined };
  } finally {
    closeSync(devnull);
  }
}

try {
  const tiers = await startTiers({ want: ['citus'] });
  const c = tiers.servers[0];
  if (c === undefined) {
    console.log(`Citus: skipped (${tiers.skipped.map((s) => s.why).join('; ')})`);
  } else {
    const url = c.url;
    console.error(`generating ${ROWS.toLocaleString('en-US')} rows…`);
    await generateBenchTable(url, ROWS, table);
    await q(url, `SELECT create_distributed_table($1, 'id')`, [table]);
    await q(url, `SELECT truncate_local_data_after_distributing_table($1)`, [table]);
    await q(url, `ANALYZE ${table}`);

    const psql = (copy) => ['psql', [url, '-X', '-q', '-c', copy]];
    const dataio = (...args) => [join(root, 'bin/dataio'), ['export', '--table', table, '--db', url, '--progress', 'none', '--json', ...args]];
    const groups = [
      {
        name: 'CSV',
        baseline: ['psql `\\copy (select * from t) to stdout (format csv, header)`, coordinator', ...psql(`\\copy (select * from ${table}) to stdout (format csv, header)`)],
        others: [
          ['dataio export (defaults: per shard on the workers)', ...dataio('--format', 'csv')],
          ['dataio export --workers 4', ...dataio('--format', 'csv', '--workers', '4')],
          ['dataio export --nodes none (one stream, coordinator)', ...dataio('--format', 'csv', '--nodes', 'none')],
        ],
      },
      {
        name: 'NDJSON',
        baseline: ['psql `\\copy (select row_to_json(t) from t) to stdout`, coordinator', ...psql(`\\copy (select row_to_json(x) from ${table} x) to stdout`)],
        others: [['dataio export --format ndjson (defaults)', ...dataio('--format', 'ndjson')]],
      },
    ];
    const times = new Map();
    const how = new Map();
    for (let round = 0; round < ROUNDS; round++) {
      for (const g of groups) {
        const runs = [g.baseline, ...g.others];
        if (round % 2 === 1) runs.reverse();
        for (const [label, cmd, args] of runs) {
          const r = await run(cmd, args);
          if (r.summary !== undefined) {
            if (r.summary.rows !== ROWS) throw new Error(`${label}: ${r.summary.rows} rows, expected ${ROWS}`);
            how.set(label, `${r.summary.workers} connections, ${r.summary.streams} streams on ${r.summary.nodes} node(s)`);
          }
          times.set(label, [...(times.get(label) ?? []), r.secs]);
          console.error(`round ${round + 1}: ${label}: ${r.secs.toFixed(2)} s`);
        }
      }
    }
    console.log(`\nExport of ${ROWS.toLocaleString('en-US')} rows of a hash-distributed table (32 shards), Citus 13.2 on PostgreSQL 15, coordinator + 2 workers on this machine, ${ROUNDS} rounds alternating, medians:\n`);
    console.log('| format | command | runs (s) | median (s) | × psql | how |');
    console.log('| --- | --- | --- | ---: | ---: | --- |');
    for (const g of groups) {
      const base = median(times.get(g.baseline[0]));
      for (const [label] of [g.baseline, ...g.others]) {
        const ts = times.get(label);
        console.log(`| ${g.name} | ${label} | ${ts.map((t) => t.toFixed(2)).join(', ')} | ${median(ts).toFixed(2)} | ${(median(ts) / base).toFixed(2)} | ${how.get(label) ?? ''} |`);
      }
    }
    console.log(`\nCommand: CITUS_ROWS=${ROWS} ROUNDS=${ROUNDS} node bench/export-citus.mjs (npm run bench -- export-citus); ${new Date().toISOString().slice(0, 10)}, Node ${process.version}.`);
  }
} finally {
  await stopAll();
}

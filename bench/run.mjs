// `npm run bench`: every benchmark in turn (each starts its own server and prints a markdown table).
// Pass names to run only some: `npm run bench -- import export`; `npm run bench -- footprint` runs
// bench/footprint.mjs (peak RSS as the input grows, start-up), which is not in the default run.
// merge: upsert, many files, a small file; field: Debian PostgreSQL 15 with and without prepared
// transactions, and Citus where it is installed; export-citus: a distributed table's export per shard
// against psql through the coordinator (skipped where Citus is not installed).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const all = ['import', 'merge', 'field', 'export', 'export-citus', 'docs'];
const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : all;
let failed = false;
for (const name of wanted) {
  const script = join(root, 'bench', `${name}.mjs`);
  if (!existsSync(script)) {
    console.error(`no benchmark ${name}`);
    failed = true;
    continue;
  }
  console.log(`\n## ${name}\n`);
  const r = spawnSync(process.execPath, [script], { stdio: 'inherit' });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);

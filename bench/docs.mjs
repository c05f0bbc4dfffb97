// Documents, side by side with psql large objects, in one run on one server:
//   psql \lo_import + \lo_export   vs   dataio doc-put + dataio doc-get -o
// Alternating which goes first, BENCH_ROUNDS rounds (3), medians; peak RSS of each dataio command.
// Prints a markdown table. Starts its own embedded PostgreSQL 18 and removes everything it made.
//
//   node bench/docs.mjs                      512 MiB, the default settings
//   BENCH_MB=128 node bench/docs.mjs         another size
//   BENCH_CHUNK_SIZES=1MB,2MB,4MB,8MB node bench/docs.mjs   dataio only, one row per chunk size
//   BENCH_WORKERS=2 node bench/docs.mjs      --workers for both doc-put and doc-get
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startServers, stopServers } from '../scripts/pg-servers.mjs';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin/dataio');
const dataDir = join(root, 'bench/data');
const MB = Number(process.env.BENCH_MB ?? 512);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WORKERS = process.env.BENCH_WORKERS;
const CHUNK_SIZES = process.env.BENCH_CHUNK_SIZES?.split(',').map((s) => s.trim()).filter(Boolean);
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

function run(cmd, args, { env = process.env } = {}) {
  return new Promise((resolve, reject) => {
    const full = TIME ? [TIME, ['-v', cmd, ...args]] : [cmd, args];
    const started = process.hrtime.bigint();
    const child = spawn(full[0], full[1], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let peakKb = 0;
    // Without /usr/bin/time: poll the child's high-water mark of resident memory.
    const poll = TIME
      ? undefined
      : setInterval(() => {
          try {
            const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
            if (m) peakKb = Math.max(peakKb, Number(m[1]));
          } catch {
            /* gone */
          }
        }, 50);
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (poll) clearInterval(poll);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const stderr = Buffer.concat(err).toString();
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      if (m) peakKb = Number(m[1]);
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve({ seconds, peakMb: peakKb / 1024, stdout: Buffer.concat(out).toString() });
    });
  });
}

async function sha256(path) {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c);
  return h.digest('hex');
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (s) => s.toFixed(2);

async function psqlRound(url, file, out) {
  const imp = await run('psql', [url, '-X', '-v', 'ON_ERROR_STOP=1', '-c', `\\lo_import '${file}'`]);
  const oid = /lo_import (\d+)/.exec(imp.stdout)?.[1];
  if (!oid) throw new Error(`no oid from psql: ${imp.stdout}`);
  try {
    const exp = await run('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\lo_export ${oid} '${out}'`]);
    return { put: imp.seconds, get: exp.seconds };
  } finally {
    await run('psql', [url, '-X', '-q', '-c', `\\lo_unlink ${oid}`]);
  }
}

async function dataioRound(url, file, out, extra) {
  const common = ['--db', url, '--progress', 'none', '--quiet'];
  const workers = WORKERS ? ['--workers', WORKERS] : [];
  const put = await run(bin, ['doc-put', file, ...common, ...workers, ...extra]);
  const id = put.stdout.trim();
  try {
    const get = await run(bin, ['doc-get', id, '-o', out, ...common, ...workers]);
    return { put: put.seconds, get: get.seconds, putMb: put.peakMb, getMb: get.peakMb };
  } finally {
    await run(bin, ['doc-rm', id, ...common]);
  }
}

mkdirSync(dataDir, { recursive: true });
const file = join(dataDir, `docs-${MB}mib.bin`);
const out = join(dataDir, `docs-${MB}mib.out`);
console.error(`# generating ${MB} MiB of random bytes in ${file}`);
await run('sh', ['-c', `head -c ${MB * 1024 * 1024} /dev/urandom > '${file}'`]);
const want = await sha256(file);
const [server] = await startServers({ only: ['pg18-embedded'] });
const checkOut = async (who) => {
  if ((await sha256(out)) !== want) throw new Error(`${who}: the file read back differs from the one stored`);
  rmSync(out, { force: true });
};
try {
  const version = (await run('psql', [server.url, '-X', '-At', '-c', 'show server_version'])).stdout.trim();
  const lines = [];
  if (CHUNK_SIZES) {
    const rows = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order each round so no size always runs first or last.
      const order = CHUNK_SIZES.map((_, i) => CHUNK_SIZES[(i + round) % CHUNK_SIZES.length]);
      for (const size of order) {
        const r = await dataioRound(server.url, file, out, ['--chunk-size', size]);
        await checkOut(`dataio ${size}`);
        rows.push({ size, ...r });
        console.error(`# round ${round + 1} chunk ${size}: put ${fmt(r.put)} s, get ${fmt(r.get)} s`);
      }
    }
    lines.push(`${MB} MiB, PostgreSQL ${version}, ${ROUNDS} rounds, medians, workers ${WORKERS ?? 'default'}`, '');
    lines.push('| chunk size | doc-put s | doc-get s | total s | peak RSS put / get MB |', '| --- | --- | --- | --- | --- |');
    for (const size of CHUNK_SIZES) {
      const rs = rows.filter((r) => r.size === size);
      const put = median(rs.map((r) => r.put));
      const get = median(rs.map((r) => r.get));
      lines.push(`| ${size} | ${fmt(put)} | ${fmt(get)} | ${fmt(put + get)} | ${Math.max(...rs.map((r) => r.putMb)).toFixed(0)} / ${Math.max(...rs.map((r) => r.getMb)).toFixed(0)} |`);
    }
  } else {
    const psql = [];
    const dataio = [];
    for (let round = 0; round < ROUNDS; round++) {
      const first = round % 2 === 0 ? 'psql' : 'dataio';
      for (const who of first === 'psql' ? ['psql', 'dataio'] : ['dataio', 'psql']) {
        const r = who === 'psql' ? await psqlRound(server.url, file, out) : await dataioRound(server.url, file, out, []);
        await checkOut(who);
        (who === 'psql' ? psql : dataio).push(r);
        console.error(`# round ${round + 1} ${who}: put ${fmt(r.put)} s, get ${fmt(r.get)} s`);
      }
    }
    const p = { put: median(psql.map((r) => r.put)), get: median(psql.map((r) => r.get)) };
    const d = { put: median(dataio.map((r) => r.put)), get: median(dataio.map((r) => r.get)) };
    const ratio = (d.put + d.get) / (p.put + p.get);
    const putMb = Math.max(...dataio.map((r) => r.putMb));
    const getMb = Math.max(...dataio.map((r) => r.getMb));
    lines.push(`${MB} MiB random file, PostgreSQL ${version} (embedded), ${ROUNDS} rounds alternating, medians; every read-back checked by SHA-256`, '');
    lines.push('| | store | read back | total | peak RSS store / read |', '| --- | --- | --- | --- | --- |');
    lines.push(`| psql \\lo_import + \\lo_export | ${fmt(p.put)} s | ${fmt(p.get)} s | ${fmt(p.put + p.get)} s | |`);
    lines.push(`| dataio doc-put + doc-get -o | ${fmt(d.put)} s | ${fmt(d.get)} s | ${fmt(d.put + d.get)} s | ${putMb.toFixed(0)} MB / ${getMb.toFixed(0)} MB |`);
    lines.push(`| ratio dataio / psql | ${(d.put / p.put).toFixed(2)} | ${(d.get / p.get).toFixed(2)} | **${ratio.toFixed(2)}** (target ≤ 0.80) | limit 300 MB |`);
    lines.push('', `verdict: time ${ratio <= 0.8 ? 'PASS' : 'FAIL'}, memory ${putMb <= 300 && getMb <= 300 ? 'PASS' : 'FAIL'}`);
  }
  console.log(lines.join('\n'));
} finally {
  await stopServers([server]);
  rmSync(file, { force: true });
  rmSync(out, { force: true });
}

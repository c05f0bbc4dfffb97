// Run a command, timed: resolves to { secs, out, err } (wall-clock seconds, stdout, stderr); rejects
// with the end of stderr when it exits non-zero. `opts` go to spawn (env, …; `stdio` with stdout
// 'ignore' or a file descriptor leaves `out` empty).
import { spawn } from 'node:child_process';

export function timed(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const secs = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`));
      else resolve({ secs, out, err });
    });
  });
}

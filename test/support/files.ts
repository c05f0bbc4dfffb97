/**
 * Scratch files for tests, in a directory of their own under the run's temporary directory. Readable
 * by the postgres OS user, so a server-side COPY FROM can read them too.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Scratch {
  dir: string;
  /** Write `content` to `name` in the scratch directory; returns its path. */
  file(name: string, content: string | Buffer): string;
}

export function scratch(prefix: string): Scratch {
  const dir = mkdtempSync(join(tmpdir(), `dataio-${prefix}-`));
  chmodSync(dir, 0o755);
  return {
    dir,
    file(name, content) {
      const p = join(dir, name);
      writeFileSync(p, content);
      chmodSync(p, 0o644);
      return p;
    },
  };
}

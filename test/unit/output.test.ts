import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openOutput, pendingTemporaryFiles, removePendingTemporaryFiles } from '../../src/io/output.js';
import { scratch } from '../support/files.js';

describe('output files', () => {
  it('write through a temporary name, renamed on commit', async () => {
    const { dir } = scratch('out');
    const out = openOutput(join(dir, 'a.csv'));
    await out.ready();
    out.stream.end('x\n');
    await new Promise((r) => out.stream.on('finish', r));
    assert.equal(existsSync(join(dir, 'a.csv')), false, 'nothing under the real name before commit');
    await out.commit();
    assert.deepEqual(readdirSync(dir), ['a.csv']);
    assert.equal(pendingTemporaryFiles.size, 0);
  });

  it('leave no temporary file when the process ends early', async () => {
    const { dir } = scratch('out');
    const out = openOutput(join(dir, 'b.csv'));
    await out.ready();
    assert.equal(readdirSync(dir).length, 1, 'the temporary file exists');
    removePendingTemporaryFiles(); // what the CLI's exit handler does
    assert.deepEqual(readdirSync(dir), []);
    out.stream.destroy();
  });
});

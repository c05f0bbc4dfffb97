import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { borrowedWritable, openOutput, pendingTemporaryFiles, removePendingTemporaryFiles } from '../../src/io/output.js';
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

/** A slow sink: takes `highWaterMark` bytes, then each write completes on the next macrotask. */
class Sink extends Writable {
  readonly got: Buffer[] = [];
  fail: Error | undefined;
  constructor() {
    super({ highWaterMark: 4 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    setImmediate(() => {
      if (this.fail !== undefined) return cb(this.fail);
      this.got.push(chunk);
      cb();
    });
  }
}

describe('borrowed stdout', () => {
  it('carries every byte, waits for the sink, and leaves it open', async () => {
    const sink = new Sink();
    const chunks = Array.from({ length: 50 }, (_, i) => Buffer.from(`row ${i}\n`));
    await pipeline(Readable.from(chunks), borrowedWritable(sink));
    assert.equal(Buffer.concat(sink.got).toString(), Buffer.concat(chunks).toString(), 'all written before the pipeline resolves');
    assert.equal(sink.writableEnded, false);
    assert.equal(sink.destroyed, false);
    assert.equal(sink.listenerCount('error'), 0, 'no listener left behind');
  });

  it("a failed pipeline neither destroys the sink nor emits the failure on it", async () => {
    const sink = new Sink();
    const errors: unknown[] = [];
    sink.on('error', (e) => errors.push(e));
    const boom = Object.assign(new Error('division by zero'), { code: '22012' });
    async function* rows() {
      yield Buffer.from('a\n');
      throw boom;
    }
    await assert.rejects(pipeline(Readable.from(rows()), borrowedWritable(sink)), boom);
    await new Promise((r) => setImmediate(r));
    assert.equal(sink.destroyed, false);
    assert.deepEqual(errors, []);
    assert.equal(sink.listenerCount('error'), 1, "only the test's own listener");
  });

  it("the sink's own failure (EPIPE, ENOSPC) fails the pipeline with that error", async () => {
    const sink = new Sink();
    sink.on('error', () => undefined);
    const enospc = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    sink.fail = enospc;
    await assert.rejects(pipeline(Readable.from([Buffer.alloc(100), Buffer.alloc(100)]), borrowedWritable(sink)), enospc);
  });

  it('openOutput("-") hands out a borrowed stdout; abort lets go of it', async () => {
    const sink = new Sink();
    const out = openOutput('-', sink);
    assert.notEqual(out.stream, sink);
    assert.equal(sink.listenerCount('error'), 1);
    await out.abort();
    assert.equal(sink.listenerCount('error'), 0);
    assert.equal(sink.destroyed, false);
  });
});

/**
 * Framing JSON array elements (`,\n{…}` each, from json-rows.ts) into one JSON array:
 * `[\n{…},\n{…}\n]\n`, and `[]\n` when there are no rows, so the output is valid JSON either way.
 * The elements may come from several ranges exported in parallel, so which row is the first one
 * overall is only known here: its leading comma is the one dropped.
 */
import { Transform, type TransformCallback } from 'node:stream';

const OPEN = Buffer.from('[');
const CLOSE = Buffer.from('\n]\n');
const EMPTY = Buffer.from('[]\n');

export class JsonArrayFrame {
  private started = false;

  /** The bytes to write for a chunk of elements. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length === 0) return [];
    if (this.started) return [chunk];
    this.started = true;
    if (chunk[0] !== 0x2c) throw new Error('JsonArrayFrame: elements must start with a comma');
    return [OPEN, chunk.subarray(1)];
  }

  /** The bytes that close the array. */
  end(): Buffer {
    return this.started ? CLOSE : EMPTY;
  }
}

export function jsonArrayTransform(): Transform {
  const frame = new JsonArrayFrame();
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      for (const b of frame.push(chunk)) this.push(b);
      cb();
    },
    flush(cb: TransformCallback) {
      cb(null, frame.end());
    },
  });
}

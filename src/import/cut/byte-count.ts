/**
 * Counting one byte value in a Buffer, for the CSV hot path: newlines (a batch's line count) and
 * quotes (their parity says whether a stretch of input ends inside a quoted field).
 *
 * A `Buffer.indexOf` loop costs a call per occurrence, about 20 ns, which on 78-byte rows with a few
 * quotes was the largest share of the Node process's own CPU (measured: 84 ms of scanning per 153 MB,
 * against 21 ms here for both counts, copying included). So: a 16-bytes-a-step WebAssembly SIMD
 * loop over a copy of the bytes in a fixed scratch area (WebAssembly cannot see a Buffer's memory;
 * the copy runs at memcpy speed out of cache). Where WebAssembly or its SIMD is not available
 * (`--jitless`, say), the same answer comes from the indexOf loop.
 *
 * The module, in the text format (assembled by hand below; opcodes from the WebAssembly core and
 * fixed-width SIMD specifications):
 *
 *   (module
 *     (memory (export "memory") 17 17)              ;; a 1 MiB scratch area (+ slack), never grown
 *     (func (export "count") (param $len i32) (param $b i32) (result i32)
 *       (local $p i32) (local $n i32) (local $end16 i32) (local $needle v128)
 *       (local.set $needle (i8x16.splat (local.get $b)))
 *       (local.set $end16 (i32.and (local.get $len) (i32.const -16)))
 *       (block (loop                                  ;; 16 bytes a step
 *         (br_if 1 (i32.ge_u (local.get $p) (local.get $end16)))
 *         (local.set $n (i32.add (local.get $n)
 *           (i32.popcnt (i8x16.bitmask (i8x16.eq (v128.load (local.get $p)) (local.get $needle))))))
 *         (local.set $p (i32.add (local.get $p) (i32.const 16)))
 *         (br 0)))
 *       (block (loop                                  ;; the last 0-15 bytes, one at a time
 *         (br_if 1 (i32.ge_u (local.get $p) (local.get $len)))
 *         (local.set $n (i32.add (local.get $n) (i32.eq (i32.load8_u (local.get $p)) (local.get $b))))
 *         (local.set $p (i32.add (local.get $p) (i32.const 1)))
 *         (br 0)))
 *       (local.get $n)))
 */

/** Bytes counted per call into the module (its scratch area). */
const SEGMENT = 1024 * 1024;
const PAGES = 17;

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function moduleBytes(): Uint8Array {
  const section = (id: number, items: number[][]): number[] => {
    const body = [...leb(items.length), ...items.flat()];
    return [id, ...leb(body.length), ...body];
  };
  const name = (s: string): number[] => [...leb(s.length), ...Buffer.from(s, 'latin1')];
  const simd = (op: number): number[] => [0xfd, ...leb(op)];
  const [len, b, p, n, end16, needle] = [0, 1, 2, 3, 4, 5];
  const get = (i: number): number[] => [0x20, i];
  const set = (i: number): number[] => [0x21, i];
  const I32 = 0x7f;
  const body = [
    ...[2, 3, I32, 1, 0x7b], // locals: 3 × i32 ($p $n $end16), 1 × v128 ($needle)
    ...get(b), ...simd(15), ...set(needle), // i8x16.splat
    ...get(len), 0x41, 0x70, 0x71, ...set(end16), // i32.const -16; i32.and
    0x02, 0x40, 0x03, 0x40, // block, loop
    ...get(p), ...get(end16), 0x4f, 0x0d, 1, // i32.ge_u; br_if 1
    ...get(n), ...get(p), ...simd(0), 0x00, 0x00, ...get(needle), ...simd(35), ...simd(100), 0x69, 0x6a, ...set(n),
    // ^ v128.load align=0 offset=0; i8x16.eq; i8x16.bitmask; i32.popcnt; i32.add
    ...get(p), 0x41, 16, 0x6a, ...set(p),
    0x0c, 0, 0x0b, 0x0b, // br 0; end; end
    0x02, 0x40, 0x03, 0x40,
    ...get(p), ...get(len), 0x4f, 0x0d, 1,
    ...get(n), ...get(p), 0x2d, 0x00, 0x00, ...get(b), 0x46, 0x6a, ...set(n), // i32.load8_u; i32.eq; i32.add
    ...get(p), 0x41, 1, 0x6a, ...set(p),
    0x0c, 0, 0x0b, 0x0b,
    ...get(n),
    0x0b,
  ];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, [[0x60, 2, I32, I32, 1, I32]]), // type 0: (i32, i32) -> i32
    ...section(3, [[0]]), // function 0 has type 0
    ...section(5, [[0x01, ...leb(PAGES), ...leb(PAGES)]]), // memory: min = max = PAGES
    ...section(7, [
      [...name('memory'), 0x02, 0],
      [...name('count'), 0x00, 0],
    ]),
    ...section(10, [[...leb(body.length), ...body]]),
  ]);
}

interface Simd {
  scratch: Buffer;
  count: (len: number, b: number) => number;
}

/** The little of the WebAssembly JS API used here (the project's TypeScript lib has no DOM types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
  compile(bytes: Uint8Array): Promise<object>;
}

function instantiate(compiled?: object): Simd | undefined {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined) return undefined;
  try {
    const instance = new wasm.Instance(compiled ?? new wasm.Module(moduleBytes()));
    const memory = instance.exports['memory'] as { buffer: ArrayBuffer };
    const count = instance.exports['count'] as (len: number, b: number) => number;
    return { scratch: Buffer.from(memory.buffer, 0, SEGMENT), count };
  } catch {
    // No SIMD in this engine (or no code generation allowed): the indexOf loop answers.
    return undefined;
  }
}

/** Below this many bytes the indexOf loop is as quick (no copy, no call into the module). */
export const MIN_SIMD = 4096;

/**
 * Making the module costs about 3 ms (measured: the first count of 64 KB took 2.9 ms, the next
 * 0.014 ms), a tenth of a small import's own work, while the indexOf loop takes about 0.55 ms per MB
 * (84 ms per 153 MB, above). So the first WARM_UP bytes counted in a process (each input byte is
 * counted twice: quotes, then newlines) go through the loop, and only a larger input makes the module.
 */
export const WARM_UP = 2 * 1024 * 1024;

let simd: Simd | undefined | null = null;
let counted = 0;
let compiling = false;

/**
 * A large input is coming: compile the module now, on V8's background threads (WebAssembly.compile),
 * while the process connects; counting uses it as soon as it is there, the indexOf loop until then.
 * The loop on code not yet optimised took 8-10 ms per MiB here at the start of an import (it is
 * quick once optimised): on the 2M-row import, the first batch was cut 5-9 ms after its chunk was read.
 */
export function prepareSimd(): void {
  if (simd !== null || compiling) return;
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined) return;
  compiling = true;
  wasm.compile(moduleBytes()).then(
    (compiled) => {
      if (simd === null) simd = instantiate(compiled);
    },
    () => {
      if (simd === null) simd = undefined;
    },
  );
}

function indexOfCount(buf: Buffer, byte: number, from: number, to: number): number {
  // A view of exactly the range, so that no search runs on past `to`.
  const view = from === 0 && to === buf.length ? buf : buf.subarray(from, to);
  let n = 0;
  let pos = view.indexOf(byte);
  while (pos !== -1) {
    n++;
    pos = view.indexOf(byte, pos + 1);
  }
  return n;
}

/** How many times `byte` occurs in buf[from, to). */
export function countByte(buf: Buffer, byte: number, from = 0, to = buf.length): number {
  if (to - from < MIN_SIMD) return indexOfCount(buf, byte, from, to);
  if (simd === null) {
    if (compiling || counted < WARM_UP) {
      counted += to - from;
      return indexOfCount(buf, byte, from, to);
    }
    simd = instantiate();
  }
  if (simd === undefined) return indexOfCount(buf, byte, from, to);
  let n = 0;
  for (let i = from; i < to; i += SEGMENT) {
    const end = Math.min(to, i + SEGMENT);
    buf.copy(simd.scratch, 0, i, end);
    n += simd.count(end - i, byte);
  }
  return n;
}

/** For tests: whether the module was made (or found missing) yet. */
export function simdTried(): boolean {
  return simd !== null;
}

/** For tests: whether the WebAssembly path is in use here. */
export function simdAvailable(): boolean {
  if (simd === null) simd = instantiate();
  return simd !== undefined;
}

/**
 * Reusable read buffers ("slabs") for the CSV fast path. A fresh 1 MiB Buffer per read costs a page
 * fault per 4 KiB when it is first written and, because batches keep their slices alive until their
 * COPY ends, old-space garbage collections driven by external memory pressure. Reading into slabs
 * that come back once every slice of them has been sent avoids both.
 *
 * A slab is handed out again only after its reference count went up and back down to zero: the
 * batcher retains a slab for every slice it puts into a batch, and a batch releases its slices once
 * its COPY has completed (the server has acknowledged every byte, so nothing queued still points at
 * them). A slab that is never retained (the prologue copied it, it went through gunzip, a batch
 * failed and is never released) is simply left to the garbage collector: the pool only ever errs on
 * the side of not reusing.
 */
export class SlabPool {
  readonly slabSize: number;
  private readonly maxFree: number;
  private readonly free: Buffer[] = [];
  /** Reference counts, keyed by the slab's memory, for the slabs this pool handed out. */
  private readonly refs = new WeakMap<ArrayBufferLike, number>();

  constructor(slabSize: number, maxFree = 256) {
    this.slabSize = slabSize;
    this.maxFree = maxFree;
  }

  /** A slab to read into: a returned one, or a new one. */
  take(): Buffer {
    const slab = this.free.pop() ?? Buffer.allocUnsafeSlow(this.slabSize);
    this.refs.set(slab.buffer, 0);
    return slab;
  }

  /** Give back a slab that was taken and never used (nothing points into it). */
  untake(slab: Buffer): void {
    if (this.refs.get(slab.buffer) === 0) this.recycle(slab.buffer);
  }

  /** A slice of a slab is kept (views of any other memory are ignored). */
  retain(view: Buffer): void {
    const n = this.refs.get(view.buffer);
    if (n !== undefined) this.refs.set(view.buffer, n + 1);
  }

  /** A retained slice is no longer needed; at zero the slab is reused. */
  release(view: Buffer): void {
    const n = this.refs.get(view.buffer);
    if (n === undefined || n <= 0) return;
    if (n > 1) this.refs.set(view.buffer, n - 1);
    else this.recycle(view.buffer);
  }

  private recycle(memory: ArrayBufferLike): void {
    this.refs.delete(memory);
    if (this.free.length < this.maxFree) this.free.push(Buffer.from(memory, 0, this.slabSize));
  }
}

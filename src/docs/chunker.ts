/**
 * Cutting a byte stream into fixed-size chunks. Pure: pieces of any size go in, whole chunks come out.
 *
 * Chunk boundaries depend only on the byte offset (chunk n is bytes [n×size, (n+1)×size)), never on
 * how reads happened to be split: a resumed upload must cut the same file at the same places.
 * No per-byte work: each piece is copied into the chunk being filled with one memcpy, and a piece
 * that holds a whole aligned chunk is handed out as a view without copying at all.
 */
export class Chunker {
  readonly size: number;
  private current: Buffer | undefined;
  private filled = 0;

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`chunk size must be a positive integer, not ${size}`);
    this.size = size;
  }

  /** Feed a piece; returns the chunks it completed, in order (often none). */
  push(piece: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let off = 0;
    while (off < piece.length) {
      if (this.filled === 0 && piece.length - off >= this.size) {
        out.push(piece.subarray(off, off + this.size));
        off += this.size;
        continue;
      }
      // allocUnsafeSlow: a chunk of its own, not a slice of Node's shared pool, so that holding it
      // (while it uploads) never keeps unrelated memory alive.
      const target = (this.current ??= Buffer.allocUnsafeSlow(this.size));
      const n = piece.copy(target, this.filled, off, Math.min(piece.length, off + this.size - this.filled));
      this.filled += n;
      off += n;
      if (this.filled === this.size) {
        out.push(target);
        this.current = undefined;
        this.filled = 0;
      }
    }
    return out;
  }

  /** The last, short chunk, if any bytes are left over. */
  end(): Buffer | undefined {
    if (this.current === undefined || this.filled === 0) return undefined;
    const last = this.current.subarray(0, this.filled);
    this.current = undefined;
    this.filled = 0;
    return last;
  }
}

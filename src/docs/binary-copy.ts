/**
 * A parser for PostgreSQL's binary COPY format (`COPY … TO STDOUT (FORMAT binary)`), as documented
 * under "Binary Format" in the COPY reference page:
 *
 *   header   11-byte signature `PGCOPY\n\377\r\n\0`, int32 flags, int32 extension length, extension
 *   tuple    int16 field count, then per field an int32 length (-1 = NULL) and that many bytes
 *   trailer  int16 -1
 *
 * All integers are big-endian. Pure: pieces of any size go in (the COPY stream hands out whatever the
 * socket delivered), whole rows come out. A field that lies within one piece is returned as a view of
 * it; one that straddles pieces is assembled with one memcpy per piece into a buffer of its exact
 * size, so a multi-megabyte bytea costs no more than a copy. Pieces are taken over, as stream chunks
 * are: a caller must not write into a piece after pushing it.
 */
import { DataioError } from '../errors.js';

export type CopyField = Buffer | null;
export type CopyRow = CopyField[];

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_FIXED = SIGNATURE.length + 8;
/** Bit 16 says each row carries an OID (servers before 12); bits 0–15 are "critical": unknown ones must stop a reader. */
const FLAG_OIDS = 1 << 16;
const CRITICAL_FLAGS = 0xffff;

type State = 'header' | 'extension' | 'count' | 'length' | 'data' | 'done';

function malformed(why: string): DataioError {
  return new DataioError('DB_ERROR', `malformed binary COPY data from the server: ${why}`);
}

export class BinaryCopyParser {
  private state: State = 'header';
  /** Bytes the current unit (header, count, length or field) needs. */
  private want = HEADER_FIXED;
  /** The unit being assembled when it straddles pieces. */
  private partial: Buffer | undefined;
  private got = 0;
  private fieldsLeft = 0;
  private row: CopyField[] = [];
  private out: CopyRow[] = [];

  /** Feed a piece; returns the rows it completed, in order. */
  push(piece: Buffer): CopyRow[] {
    this.out = [];
    let off = 0;
    while (off < piece.length) {
      if (this.state === 'done') throw malformed(`${piece.length - off} bytes after the trailer`);
      let unit: Buffer;
      if (this.got === 0 && piece.length - off >= this.want) {
        unit = piece.subarray(off, off + this.want);
        off += this.want;
      } else {
        const target = (this.partial ??= Buffer.allocUnsafe(this.want));
        const n = piece.copy(target, this.got, off, Math.min(piece.length, off + this.want - this.got));
        this.got += n;
        off += n;
        if (this.got < this.want) break;
        unit = target;
        this.partial = undefined;
        this.got = 0;
      }
      this.take(unit);
    }
    return this.out;
  }

  /** The stream ended: it must have ended exactly after the trailer. */
  end(): void {
    if (this.state !== 'done') throw malformed(this.state === 'header' && this.got === 0 ? 'no data' : 'the data ends before the trailer');
  }

  private take(unit: Buffer): void {
    switch (this.state) {
      case 'header': {
        if (!unit.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw malformed('bad signature');
        const flags = unit.readUInt32BE(SIGNATURE.length);
        if (flags & FLAG_OIDS) throw malformed('rows carry OIDs, which this reader does not expect');
        if (flags & CRITICAL_FLAGS) throw malformed(`unknown critical flags 0x${(flags & CRITICAL_FLAGS).toString(16)}`);
        const ext = unit.readUInt32BE(SIGNATURE.length + 4);
        if (ext > 0) this.expect('extension', ext);
        else this.expect('count', 2);
        return;
      }
      case 'extension':
        this.expect('count', 2);
        return;
      case 'count': {
        const n = unit.readInt16BE(0);
        if (n === -1) {
          this.state = 'done';
          return;
        }
        if (n < 0) throw malformed(`field count ${n}`);
        this.row = [];
        this.fieldsLeft = n;
        if (n === 0) this.finishRow();
        else this.expect('length', 4);
        return;
      }
      case 'length': {
        const len = unit.readInt32BE(0);
        if (len === -1) this.field(null);
        else if (len < 0) throw malformed(`field length ${len}`);
        else if (len === 0) this.field(Buffer.alloc(0));
        else this.expect('data', len);
        return;
      }
      case 'data':
        this.field(unit);
        return;
      case 'done':
        throw malformed('data after the trailer');
    }
  }

  private expect(state: State, want: number): void {
    this.state = state;
    this.want = want;
  }

  private field(value: CopyField): void {
    this.row.push(value);
    this.fieldsLeft--;
    if (this.fieldsLeft === 0) this.finishRow();
    else this.expect('length', 4);
  }

  private finishRow(): void {
    this.out.push(this.row);
    this.row = [];
    this.expect('count', 2);
  }
}

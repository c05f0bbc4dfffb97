/**
 * For a resume: the chunk hashes already stored, read page by page in seq order while the input is
 * read in the same order, so memory stays small even for a document of a million chunks.
 */
import type pg from 'pg';
import { CHUNKS } from './schema.js';

const PAGE = 4096;

interface StoredChunk {
  seq: number;
  sha256: Buffer;
}

export class StoredChunks {
  private page: StoredChunk[] = [];
  private at = 0;
  /** The last page read reached the end of the stored chunks. */
  private exhausted = false;

  private constructor(
    private readonly client: pg.Client,
    private readonly doc: string,
    /** The highest stored seq, or -1 when nothing is stored. */
    readonly highest: number,
  ) {
    this.exhausted = highest < 0;
  }

  static async open(client: pg.Client, doc: string): Promise<StoredChunks> {
    const r = await client.query<{ max: number | null }>(`SELECT max(seq) AS max FROM ${CHUNKS} WHERE doc = $1`, [doc]);
    return new StoredChunks(client, doc, r.rows[0]?.max ?? -1);
  }

  /** The stored hash of chunk `seq`, if stored. Calls must come in increasing seq order. */
  async get(seq: number): Promise<Buffer | undefined> {
    for (;;) {
      while (this.at < this.page.length && (this.page[this.at] as StoredChunk).seq < seq) this.at++;
      const hit = this.page[this.at];
      if (hit !== undefined) return hit.seq === seq ? hit.sha256 : undefined;
      if (this.exhausted || seq > this.highest) return undefined;
      const r = await this.client.query<StoredChunk>(`SELECT seq, sha256 FROM ${CHUNKS} WHERE doc = $1 AND seq >= $2 ORDER BY seq LIMIT ${PAGE}`, [this.doc, seq]);
      this.page = r.rows;
      this.at = 0;
      if (r.rows.length < PAGE) this.exhausted = true;
    }
  }
}

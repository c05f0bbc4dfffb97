/**
 * The inputs of one import: files, the files of directories (sorted by name, not recursive, hidden
 * files skipped), or stdin. Each file's format comes from its extension (or one --format for all);
 * gzip is recognised by its magic bytes when the file is opened. The files are read one after the
 * other, each opened only when the one before it is done, so an import of a thousand files holds one
 * open at a time.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DataioError, usage } from '../../errors.js';
import { formatFromPath, type FileFormat } from '../../io/formats.js';
import { openInput, type InputSource, type OpenInputOptions } from '../../io/input.js';

export type InputFormat = FileFormat;

export interface InputFile {
  /** The path, or - for stdin. */
  path: string;
  /** Raw size in bytes (a regular file), for progress and the resumable import's check. */
  size: number | undefined;
  format: InputFormat;
}

/** The format family: one import reads one kind of record. */
function family(f: InputFormat): string {
  return f === 'csv' || f === 'tsv' ? f : 'json';
}

async function sizeOf(path: string): Promise<{ dir: boolean; size: number | undefined }> {
  try {
    const st = await stat(path);
    return { dir: st.isDirectory(), size: st.isFile() ? st.size : undefined };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DataioError('INPUT_NOT_FOUND', `input file not found: ${path}`, { hint: 'check the path, or use - to read stdin' });
    }
    throw new DataioError('INPUT_READ', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The files to read, in order: paths as given, each directory replaced by its files sorted by name.
 * Every file must have the format of the first (by extension, unless `format` is given for all).
 */
export async function resolveInputs(paths: readonly string[], format: InputFormat | undefined): Promise<InputFile[]> {
  if (paths.length === 0) throw usage('import needs an input: a file, a directory, or - for stdin');
  if (paths.includes('-') && paths.length > 1) throw usage('- (stdin) cannot be combined with other inputs');
  const files: InputFile[] = [];
  const add = (path: string, size: number | undefined) => files.push({ path, size, format: format ?? formatFromPath(path) ?? 'csv' });
  for (const path of paths) {
    if (path === '-') {
      add(path, undefined);
      continue;
    }
    const s = await sizeOf(path);
    if (!s.dir) {
      add(path, s.size);
      continue;
    }
    let names: string[];
    try {
      names = (await readdir(path, { withFileTypes: true })).filter((d) => !d.name.startsWith('.') && (d.isFile() || d.isSymbolicLink())).map((d) => d.name);
    } catch (err) {
      throw new DataioError('INPUT_READ', `cannot read the directory ${path}: ${(err as Error).message}`, { cause: err });
    }
    // Sorted by name as bytes, not by locale: the same order on every machine (a resumed import relies on it).
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const before = files.length;
    for (const name of names) {
      const p = join(path, name);
      const f = await sizeOf(p);
      if (!f.dir) add(p, f.size);
    }
    if (files.length === before) throw new DataioError('INPUT_NOT_FOUND', `the directory ${path} holds no files to import`, { hint: 'hidden files (.name) and subdirectories are not read' });
  }
  const first = files[0] as InputFile;
  const other = files.find((f) => family(f.format) !== family(first.format));
  if (other !== undefined) {
    throw usage(`${other.path} is ${other.format.toUpperCase()} by its name, but ${first.path} is ${first.format.toUpperCase()}: one import reads one format`, 'import them separately, or give --format');
  }
  return files;
}

/** The import's files, opened one after the other; raw bytes read are counted over all of them. */
export class InputSet {
  readonly files: readonly InputFile[];
  private readonly options: OpenInputOptions;
  /** Raw bytes of the files before the one open now, and the open one's counter. */
  private before = 0;
  private current: InputSource | undefined;

  constructor(files: readonly InputFile[], options: OpenInputOptions = {}) {
    this.files = files;
    this.options = options;
  }

  /** Raw bytes of all the inputs, when every size is known. */
  get totalSize(): number | undefined {
    let n = 0;
    for (const f of this.files) {
      if (f.size === undefined) return undefined;
      n += f.size;
    }
    return n;
  }

  /** Whether the inputs can be read again from their start (stdin cannot). */
  get reopenable(): boolean {
    return !this.files.some((f) => f.path === '-');
  }

  /** For messages: "input line 12" with one input, "b.csv, line 12" with several. */
  where(file: number, line: number): string {
    return this.files.length > 1 ? `${this.files[file]?.path ?? '?'}, line ${line}` : `input line ${line}`;
  }

  /** Some file opened so far is gzip-compressed (progress then counts compressed bytes read). */
  anyGzip = false;

  /** Open file `i` (the one before it must be done); `i` 0 again starts another pass over all of them. */
  async open(i: number): Promise<InputSource> {
    const f = this.files[i];
    if (f === undefined) throw new Error(`no input ${i}`);
    if (i === 0) this.before = 0;
    else if (this.current !== undefined) this.before += this.current.rawBytesRead();
    const source = await openInput(f.path, undefined, this.options);
    this.current = source;
    if (source.gzip) this.anyGzip = true;
    return source;
  }

  /** Raw (compressed) bytes read so far, over all files. */
  rawBytesRead(): number {
    return this.before + (this.current?.rawBytesRead() ?? 0);
  }

  /** Raw bytes of the files before `i` (their sizes), for progress. */
  sizeBefore(i: number): number {
    let n = 0;
    for (let k = 0; k < i; k++) n += this.files[k]?.size ?? 0;
    return n;
  }
}

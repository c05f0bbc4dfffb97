import type { Command } from 'commander';
import { EXIT_OK } from '../errors.js';
import { DEFAULT_GET_WORKERS, DEFAULT_PUT_WORKERS } from '../docs/defaults.js';
import type { DocumentListing } from '../docs/ls.js';
import type { DocumentInfo } from '../docs/store.js';
import { formatBytes, formatCount } from '../progress/progress.js';
import type { CommandContext, Runner } from './context.js';
import { parsePositiveInt, parseSize } from './parse.js';

const MAX_WORKERS = 64;

interface PutFlags {
  name?: string;
  contentType?: string;
  chunkSize?: string;
  workers: string;
  resume?: string;
}

interface GetFlags {
  output: string;
  workers: string;
}

interface JsonFlag {
  json?: boolean;
}

/** A name as shown in listings and messages: quoted when it holds anything a terminal could misread. */
function showName(name: string | null): string {
  if (name === null) return '-';
  return /^[^\s"\p{C}](?:[^"\p{C}]*[^\s"\p{C}])?$/u.test(name) ? name : JSON.stringify(name);
}

function describe(doc: DocumentInfo): string {
  return doc.name === null ? doc.id : `${doc.id} (${showName(doc.name)})`;
}

function noteSameName(ctx: CommandContext, doc: DocumentInfo, sameName: number): void {
  if (sameName > 1) ctx.note(`${sameName} documents are named ${showName(doc.name)}: using the newest complete one, ${doc.id} of ${doc.createdAt.toISOString()}`);
}

function sizeOf(d: DocumentListing): string {
  return d.state === 'complete' ? formatBytes(d.size ?? 0) : `${formatBytes(d.storedBytes)}${d.size === null ? '' : ` of ${formatBytes(d.size)}`}`;
}

function lsTable(docs: DocumentListing[]): string {
  const rows = [['ID', 'STATE', 'SIZE', 'CREATED', 'NAME'], ...docs.map((d) => [d.id, d.state, sizeOf(d), d.createdAt.toISOString().replace(/\.\d+Z$/, 'Z'), showName(d.name)])];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i < 4 ? cell.padEnd(widths[i] ?? 0) : cell)).join('  ')).join('\n') + '\n';
}

function statText(d: DocumentListing): string {
  const lines: [string, string][] = [
    ['id', d.id],
    ['name', showName(d.name)],
    ['state', d.state],
    ['size', d.size === null ? 'not known yet' : `${d.size} bytes (${formatBytes(d.size)})`],
    ['sha256', d.sha256?.toString('hex') ?? '-'],
    ['content type', d.contentType ?? '-'],
    ['chunks', `${d.chunkCount ?? '?'} of ${formatBytes(d.chunkSize)}`],
  ];
  if (d.state !== 'complete') lines.push(['stored so far', `${formatCount(d.storedChunks)} chunks, ${formatBytes(d.storedBytes)}`]);
  lines.push(['chunk list sha256', d.chunksSha256?.toString('hex') ?? '-'], ['created', d.createdAt.toISOString()], ['completed', d.completedAt?.toISOString() ?? '-']);
  const width = Math.max(...lines.map(([k]) => k.length)) + 2;
  return lines.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`).join('\n') + '\n';
}

export function defineDocs(program: Command, run: Runner): void {
  program
    .command('doc-put')
    .summary('store a binary document of any size, in checksummed chunks; prints its id')
    .description(
      'Store a file (or stdin, as -) as a document: cut into chunks, each stored with its SHA-256 over ' +
        'parallel connections; the document is complete only when every chunk is in. Prints the id on ' +
        'stdout and nothing else. An interrupted upload can be finished with --resume ID.',
    )
    .argument('<file>', 'the file, or - for stdin')
    .option('--name <name>', 'a name to find the document by (default: the file name)')
    .option('--content-type <type>', 'a MIME type to keep with it')
    .option('--chunk-size <size>', 'bytes per stored chunk, 64KB to 64MB (default 4MB)')
    .option('-w, --workers <n>', 'parallel upload connections', String(DEFAULT_PUT_WORKERS))
    .option('--resume <id>', 'finish an interrupted upload of the same file: send only the missing chunks')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ id=$(dataio doc-put backup.tar.gz --name nightly)\n' +
        '  $ pg_dump mydb | dataio doc-put - --name mydb.dump\n' +
        '  $ dataio doc-put backup.tar.gz --resume 0b8e…   # after an interruption',
    )
    .action(
      run(async (ctx, file, flags) => {
        const f = flags as PutFlags;
        const input = file as string;
        const target = await ctx.target();
        const { putDocument } = await import('../docs/put.js');
        const r = await putDocument(
          target,
          {
            input,
            stdin: process.stdin,
            name: f.name,
            contentType: f.contentType,
            chunkSize: f.chunkSize === undefined ? undefined : parseSize(f.chunkSize, '--chunk-size'),
            workers: parsePositiveInt(f.workers, '--workers', MAX_WORKERS),
            resume: f.resume,
          },
          {
            progress: (total) => ctx.progress('doc-put', total, 'chunks'),
            started: (doc) => ctx.note(`doc-put: storing ${input === '-' ? 'stdin' : input} as document ${doc.id}${f.resume === undefined ? ` (if interrupted, finish it with --resume ${doc.id})` : ' (resuming)'}`),
          },
        );
        ctx.io.stdout.write(`${r.id}\n`);
        const reused = r.reused > 0 ? `, ${formatCount(r.reused)} of them already stored` : '';
        ctx.note(`stored ${formatBytes(r.size)} in ${formatCount(r.chunks)} chunk${r.chunks === 1 ? '' : 's'}${reused} in ${r.seconds.toFixed(1)} s; sha256 ${r.sha256}`);
        return EXIT_OK;
      }),
    );

  program
    .command('doc-get')
    .summary('stream a stored document back, verified')
    .description(
      'Write a document to stdout or a file, checking every chunk against its SHA-256 and the whole ' +
        'document against its own. A file is written under a temporary name and renamed only after all ' +
        'checks passed: a failed get leaves no file. A name means the newest complete document with it.',
    )
    .argument('<id-or-name>', 'the document id or name')
    .option('-o, --output <file>', 'output file, or - for stdout', '-')
    .option('-w, --workers <n>', 'parallel fetch connections', String(DEFAULT_GET_WORKERS))
    .addHelpText('after', '\nExamples:\n  $ dataio doc-get nightly -o backup.tar.gz\n  $ dataio doc-get mydb.dump | pg_restore -d mydb')
    .action(
      run(async (ctx, ref, flags) => {
        const f = flags as GetFlags;
        const target = await ctx.target();
        const { getDocument } = await import('../docs/get.js');
        const r = await getDocument(
          target,
          { ref: ref as string, output: f.output, stdout: ctx.io.stdout, workers: parsePositiveInt(f.workers, '--workers', MAX_WORKERS) },
          {
            progress: (total) => ctx.progress('doc-get', total, 'chunks'),
            resolved: ({ doc, sameName }) => noteSameName(ctx, doc, sameName),
          },
        );
        if (f.output !== '-') ctx.note(`wrote ${f.output}: ${formatBytes(r.bytes)}, every chunk and the sha256 ${r.doc.sha256?.toString('hex') ?? ''} verified, in ${r.seconds.toFixed(1)} s`);
        return EXIT_OK;
      }),
    );

  program
    .command('doc-ls')
    .summary('list stored documents')
    .option('--json', 'one JSON object per document, one a line')
    .addHelpText('after', '\nExamples:\n  $ dataio doc-ls\n  $ dataio doc-ls --json | jq -r "select(.state == \\"uploading\\") | .id"')
    .action(
      run(async (ctx, flags) => {
        const target = await ctx.target();
        const [{ withClient }, { listDocuments, documentJson }] = await Promise.all([import('../pg/connect.js'), import('../docs/ls.js')]);
        const docs = await withClient(target, (c) => listDocuments(c));
        if ((flags as JsonFlag).json === true) ctx.io.stdout.write(docs.map((d) => JSON.stringify(documentJson(d)) + '\n').join(''));
        else if (docs.length > 0) ctx.io.stdout.write(lsTable(docs));
        else ctx.note('no documents are stored');
        return EXIT_OK;
      }),
    );

  program
    .command('doc-stat')
    .summary('show one document: size, chunks, checksum, state')
    .argument('<id-or-name>', 'the document id or name')
    .option('--json', 'as one JSON object')
    .addHelpText('after', '\nExample:\n  $ dataio doc-stat nightly')
    .action(
      run(async (ctx, ref, flags) => {
        const target = await ctx.target();
        const [{ withClient }, { statDocument, documentJson }] = await Promise.all([import('../pg/connect.js'), import('../docs/ls.js')]);
        const { listing, sameName } = await withClient(target, (c) => statDocument(c, ref as string));
        noteSameName(ctx, listing, sameName);
        ctx.io.stdout.write((flags as JsonFlag).json === true ? JSON.stringify(documentJson(listing)) + '\n' : statText(listing));
        return EXIT_OK;
      }),
    );

  program
    .command('doc-rm')
    .summary('delete a stored document')
    .description('Delete a document: it is marked as being deleted first (so it can no longer be fetched), then its chunks are removed in batches, each its own transaction. A name must match exactly one document.')
    .argument('<id-or-name>', 'the document id or name')
    .addHelpText('after', '\nExample:\n  $ dataio doc-rm nightly')
    .action(
      run(async (ctx, ref) => {
        const target = await ctx.target();
        const { removeDocument } = await import('../docs/rm.js');
        const r = await removeDocument(target, { ref: ref as string }, { progress: (total) => ctx.progress('doc-rm', total, 'chunks') });
        ctx.note(`removed document ${describe(r.doc)}: ${formatCount(r.chunks)} chunks in ${r.batches} batches, ${r.seconds.toFixed(1)} s`);
        return EXIT_OK;
      }),
    );
}

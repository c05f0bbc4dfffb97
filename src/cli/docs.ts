import type { Command } from 'commander';
import { DataioError } from '../errors.js';
import type { Runner } from './main.js';

function notBuilt(name: string): DataioError {
  return new DataioError('NOT_IMPLEMENTED', `dataio ${name} is not built yet`, { hint: 'see the README for what works today' });
}

export function defineDocs(program: Command, run: Runner): void {
  program
    .command('doc-put')
    .summary('store a binary document of any size, in checksummed chunks; prints its id')
    .argument('<file>', 'the file, or - for stdin')
    .option('--name <name>', 'a name to find the document by')
    .option('--content-type <type>', 'a MIME type to keep with it')
    .option('--chunk-size <size>', 'bytes per stored chunk')
    .option('-w, --workers <n>', 'parallel upload connections')
    .option('--resume <id>', 'finish an interrupted upload of the same file')
    .addHelpText('after', '\nExample:\n  $ id=$(dataio doc-put backup.tar.gz --name nightly)')
    .action(run(async () => Promise.reject(notBuilt('doc-put'))));

  program
    .command('doc-get')
    .summary('stream a stored document back, verified')
    .argument('<id-or-name>', 'the document id or name')
    .option('-o, --output <file>', 'output file, or - for stdout', '-')
    .option('-w, --workers <n>', 'parallel fetch connections')
    .addHelpText('after', '\nExample:\n  $ dataio doc-get nightly -o backup.tar.gz')
    .action(run(async () => Promise.reject(notBuilt('doc-get'))));

  program
    .command('doc-ls')
    .summary('list stored documents')
    .option('--json', 'one JSON object per document')
    .addHelpText('after', '\nExample:\n  $ dataio doc-ls')
    .action(run(async () => Promise.reject(notBuilt('doc-ls'))));

  program
    .command('doc-stat')
    .summary('show one document: size, chunks, checksum, state')
    .argument('<id-or-name>', 'the document id or name')
    .addHelpText('after', '\nExample:\n  $ dataio doc-stat nightly')
    .action(run(async () => Promise.reject(notBuilt('doc-stat'))));

  program
    .command('doc-rm')
    .summary('delete a stored document')
    .argument('<id-or-name>', 'the document id or name')
    .addHelpText('after', '\nExample:\n  $ dataio doc-rm nightly')
    .action(run(async () => Promise.reject(notBuilt('doc-rm'))));
}

/**
 * `--help` reads as written: commander wraps every description at the terminal's width (80 when
 * stdout is not a terminal), so a line break inside a description is one commander did not make,
 * and shows as a ragged line. And the short options mean one thing each: `-q` is --quiet everywhere,
 * export's query is `-c` (as in psql).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runCli, testServers } from '../support/env.js';
import { scratch } from '../support/files.js';

const WIDTH = 80;
const COMMANDS = [[], ['import'], ['export'], ['db'], ['db', 'start'], ['db', 'stop'], ['db', 'status'], ['db', 'url'], ['doc-put'], ['doc-get'], ['doc-ls'], ['doc-stat'], ['doc-rm'], ['setup']];

const indent = (line: string) => line.length - line.trimStart().length;

/**
 * Lines of `help` that commander would not have broken where they are: a line followed by a
 * continuation of the same paragraph (or option description) whose first word would have fitted on
 * it. Examples (shell lines) are left alone: they are written as they are meant to be typed.
 */
function hardBreaks(help: string, width = WIDTH): string[] {
  const lines = help.split('\n');
  const bad: string[] = [];
  let column = -1; // the description column of the option or command list being read
  let inExamples = false;
  for (let i = 0; i + 1 < lines.length; i++) {
    const a = lines[i] as string;
    const b = lines[i + 1] as string;
    if (/^Examples?:$/.test(a)) inExamples = true;
    else if (/^\S.*:$/.test(a)) inExamples = false;
    if (inExamples || a.trim() === '' || b.trim() === '') continue;
    const ia = indent(a);
    const ib = indent(b);
    let continues = false;
    if (ia === 0 && ib === 0) continues = !/:$/.test(a) && !a.startsWith('Usage:');
    else if (ib > ia && a[ib - 1] === ' ' && a[ib - 2] === ' ' && a[ib] !== ' ') {
      column = ib;
      continues = true;
    } else if (ib > 0 && ia === column && ib === column) continues = true;
    if (!continues) continue;
    const next = b.trimStart().split(' ')[0] as string;
    if (a.length + 1 + next.length <= width) bad.push(`${a}⏎${b}`);
  }
  return bad;
}

describe('help text', () => {
  it('the checker finds a hard break and passes a greedy wrap', () => {
    assert.deepEqual(hardBreaks('Usage: x\n\nA short line\nbroken here.\n'), ['A short line⏎broken here.']);
    assert.deepEqual(hardBreaks('Options:\n  -a, --all  one\n             two\n  -b         three\n'), ['  -a, --all  one⏎             two']);
    assert.deepEqual(hardBreaks(`Usage: x\n\n${'word '.repeat(15)}word\nnext\n`), []);
  });

  for (const cmd of COMMANDS) {
    it(`dataio ${cmd.join(' ') || '(main)'} --help at ${WIDTH} columns: no line broken by hand inside a description`, async () => {
      const r = await runCli([...cmd, '--help'], { env: { COLUMNS: String(WIDTH) } });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.length > 100);
      assert.deepEqual(hardBreaks(r.stdout), []);
      const wide = r.stdout.split('\n').filter((l) => l.length > WIDTH && !l.startsWith('  $ '));
      assert.deepEqual(wide, [], 'only example command lines may be wider than the terminal');
    });
  }

  it('-q is --quiet for every command, -c is export\'s query; --help says so', async () => {
    const main = await runCli(['--help']);
    assert.match(main.stdout, /^ {2}-q, --quiet +no progress/m);
    const help = await runCli(['export', '--help']);
    assert.match(help.stdout, /^ {2}-c, --query <sql> /m);
    assert.doesNotMatch(help.stdout, /-q, --query/);
    // Without a database: -q after the command is still --quiet, so export lacks a query (a usage error).
    const r = await runCli(['export', '-q', '--db', 'postgresql://nobody@127.0.0.1:1/x']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /exactly one of --table, --query or --query-file/);
  });

  for (const server of testServers().slice(0, 1)) {
    it(`export -c runs the query, -q silences the summary (${server.name})`, async () => {
      const { file } = scratch('help-text');
      const out = file('q.csv', '');
      const loud = await runCli(['export', '-c', 'select g from generate_series(1, 3) g', '-o', out, '--db', server.url, '--progress', 'none']);
      assert.equal(loud.code, 0, loud.stderr);
      assert.equal(readFileSync(out, 'utf8'), 'g\n1\n2\n3\n');
      assert.match(loud.stderr, /exported 3 rows/);
      for (const args of [['-q', 'export'], ['export', '-q']]) {
        const quiet = await runCli([...args, '-c', 'select 4 as h', '-o', out, '--db', server.url]);
        assert.equal(quiet.code, 0, quiet.stderr);
        assert.equal(quiet.stderr, '');
        assert.equal(readFileSync(out, 'utf8'), 'h\n4\n');
      }
    });
  }
});

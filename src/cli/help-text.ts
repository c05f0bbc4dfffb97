/**
 * Paragraphs for `addHelpText`: written as running text and wrapped here, greedily, at the width
 * commander wraps descriptions at (the terminal's, 80 when stdout is not one), so they read like the
 * rest of the help and never carry a line break of their own.
 */
export function helpWidth(): number {
  return process.stdout.isTTY && process.stdout.columns > 0 ? process.stdout.columns : 80;
}

/** Each paragraph (separated by blank lines in `text`) wrapped at `width`; words are never split. */
export function wrapParagraphs(text: string, width = helpWidth()): string {
  return text
    .split(/\n\s*\n/)
    .map((p) => {
      const lines: string[] = [];
      let line = '';
      for (const word of p.split(/\s+/).filter((w) => w !== '')) {
        if (line !== '' && line.length + 1 + word.length > width) {
          lines.push(line);
          line = word;
        } else line = line === '' ? word : `${line} ${word}`;
      }
      if (line !== '') lines.push(line);
      return lines.join('\n');
    })
    .join('\n\n');
}

/**
 * Progress on stderr: a cli-progress bar when stderr is a TTY (bar) or one JSON line a second (json),
 * or nothing. Jobs call update() as often as they like; rendering is throttled here.
 */
import { createRequire } from 'node:module';
import type { ProgressMode } from '../config.js';

export interface ProgressState {
  /** Bytes processed (of the input for import, of the output for export). */
  bytes: number;
  rows: number;
  /** The planner's estimate of all rows, when known (export): shows % where the byte total is unknown. */
  rowsTotal?: number | undefined;
  /** Rows rejected so far (import --on-error skip). */
  rejected?: number | undefined;
}

export interface Progress {
  update(state: ProgressState): void;
  stop(): void;
}

export interface ProgressOptions {
  mode: ProgressMode;
  /** What is being done, e.g. "import t". */
  label: string;
  /** Total bytes when known (a file's size): enables % and ETA. */
  total: number | undefined;
  stream?: NodeJS.WriteStream;
  /** What `rows` counts, in the bar: "rows" unless told (documents count chunks). */
  unit?: string;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** 1234567 → "1,234,567" (toLocaleString would start ICU: 15 ms at every start-up). */
export function formatCount(n: number): string {
  const s = String(Math.abs(Math.round(n)));
  return (n < 0 && Math.round(n) !== 0 ? '-' : '') + s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** cli-progress, loaded only when a bar is drawn (not for --progress none or json, nor without a TTY). */
function cliProgress(): typeof import('cli-progress') {
  return createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
}

/** % of the estimated rows; an estimate can be low, so it stops at 100. */
function rowPercent(s: ProgressState): number {
  return Number(Math.min(100, (100 * s.rows) / (s.rowsTotal as number)).toFixed(1));
}

const NOOP: Progress = { update: () => undefined, stop: () => undefined };

export function resolveMode(mode: ProgressMode, stream: NodeJS.WriteStream): 'bar' | 'json' | 'none' {
  if (mode === 'auto') return stream.isTTY ? 'bar' : 'none';
  return mode;
}

export function createProgress(o: ProgressOptions): Progress {
  const stream = o.stream ?? process.stderr;
  const mode = resolveMode(o.mode, stream);
  if (mode === 'none') return NOOP;
  const started = Date.now();
  let last: ProgressState = { bytes: 0, rows: 0 };
  const rates = () => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    return { secs, rowsPerSec: last.rows / secs, mbPerSec: last.bytes / 1e6 / secs };
  };

  if (mode === 'json') {
    const emit = () => {
      const r = rates();
      const line: Record<string, unknown> = {
        job: o.label,
        bytes: last.bytes,
        rows: last.rows,
        elapsedSec: Number(r.secs.toFixed(1)),
        rowsPerSec: Math.round(r.rowsPerSec),
        mbPerSec: Number(r.mbPerSec.toFixed(2)),
      };
      if (o.total !== undefined && o.total > 0) {
        line['totalBytes'] = o.total;
        line['percent'] = Number(((100 * last.bytes) / o.total).toFixed(1));
      } else if (last.rowsTotal !== undefined && last.rowsTotal > 0) {
        line['estimatedRows'] = last.rowsTotal;
        line['percent'] = rowPercent(last);
      }
      if (last.rejected !== undefined) {
        line['rejected'] = last.rejected;
      }
      stream.write(JSON.stringify(line) + '\n');
    };
    const timer = setInterval(emit, 1000);
    timer.unref();
    return {
      update: (s) => (last = s),
      stop: () => {
        clearInterval(timer);
        emit();
      },
    };
  }

  const known = o.total !== undefined && o.total > 0;
  const unit = o.unit ?? 'rows';
  const format = known
    ? `${o.label} {bar} {percentage}% | {done}/{size} | {rows} ${unit}{rejected} | {rps} ${unit}/s | {mbps} MB/s | ETA {eta_formatted}`
    : `${o.label} {done} |{estimate} {rows} ${unit}{rejected} | {rps} ${unit}/s | {mbps} MB/s | {elapsed}s`;
  const bars = cliProgress();
  const bar = new bars.SingleBar(
    { format, stream, hideCursor: true, clearOnComplete: true, fps: 5, etaBuffer: 50, barsize: 24 },
    bars.Presets.shades_classic,
  );
  const payload = () => {
    const r = rates();
    return {
      done: formatBytes(last.bytes),
      size: formatBytes(o.total ?? 0),
      rows: formatCount(last.rows),
      rps: formatCount(r.rowsPerSec),
      mbps: r.mbPerSec.toFixed(1),
      elapsed: r.secs.toFixed(0),
      estimate: last.rowsTotal !== undefined && last.rowsTotal > 0 ? ` ${rowPercent(last)}% of ~${formatCount(last.rowsTotal)} |` : '',
      rejected: last.rejected !== undefined && last.rejected > 0 ? ` (${formatCount(last.rejected)} rejected)` : '',
    };
  };
  bar.start(known ? (o.total as number) : 1, 0, payload());
  return {
    update: (s) => {
      last = s;
      bar.update(known ? Math.min(s.bytes, o.total as number) : 0, payload());
    },
    stop: () => bar.stop(),
  };
}

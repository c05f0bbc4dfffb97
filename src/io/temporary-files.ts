/**
 * The temporary files of outputs (output.ts) not yet renamed into place or removed, for the CLI to
 * remove when the process ends early. Apart from output.ts so that the CLI's exit handler does not load
 * output streams into every command.
 */
import { unlinkSync } from 'node:fs';

/**
 * Temporary files not yet renamed or removed. The CLI removes what is left here when the process
 * ends early (a second ^C, a signal to a command that stops at once), so no temporary file stays.
 */
export const pendingTemporaryFiles = new Set<string>();

/** Remove what is left of pendingTemporaryFiles, synchronously (for a process 'exit' handler). */
export function removePendingTemporaryFiles(): void {
  for (const tmp of pendingTemporaryFiles) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
  pendingTemporaryFiles.clear();
}

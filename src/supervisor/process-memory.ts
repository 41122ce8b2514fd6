import { readFileSync } from 'node:fs';

/** The resident memory of a process in bytes (Linux /proc), or null where it cannot be read. */
export function residentBytes(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? null : Number(kb) * 1024;
  } catch {
    return null;
  }
}

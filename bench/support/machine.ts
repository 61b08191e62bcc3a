import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';

/** What the numbers were measured on: they mean little without it. */
export interface Machine {
  nproc: number;
  node: string;
  cpu: string;
  memoryGiB: number;
}

export function machine(): Machine {
  let cpu = 'unknown';
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match?.[1] !== undefined) cpu = match[1].trim();
  } catch {
    // not Linux: leave it unknown
  }
  return {
    nproc: availableParallelism(),
    node: process.version,
    cpu,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  };
}

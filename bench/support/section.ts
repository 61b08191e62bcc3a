import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** One benchmark's report: markdown for RESULTS.md and the raw numbers behind it. */
export interface BenchSection {
  title: string;
  /** How to run this benchmark alone. */
  command: string;
  markdown: string;
  metrics: Record<string, number | string | boolean>;
}

/**
 * Run `bench` when its file is the entry point: print the markdown, and write the section as
 * JSON to `$BENCH_OUT` when run-all asked for it. Exits non-zero on failure.
 */
export function runIfMain(moduleUrl: string, bench: () => Promise<BenchSection>): void {
  const entry = process.argv[1];
  if (entry === undefined || pathToFileURL(entry).href !== moduleUrl) return;
  bench().then(
    (section) => {
      process.stdout.write(`\n## ${section.title}\n\n${section.markdown}\n`);
      const out = process.env['BENCH_OUT'];
      if (out) writeFileSync(out, JSON.stringify(section));
      // Benchmarks close what they start; exit anyway so a stray handle cannot stall run-all.
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}

/** A markdown table from a header row and rows. */
export function table(
  header: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
): string {
  const line = (cells: ReadonlyArray<string | number>) => `| ${cells.map(String).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

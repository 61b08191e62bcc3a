// Every benchmark in sequence, each in its own node process (its own heap and JIT, and the flags it
// needs), then bench/RESULTS.md rewritten with the machine, the commands and the numbers.
// Run: npm run bench   (node --import tsx bench/run-all.ts)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine } from './support/machine.js';
import type { BenchSection } from './support/section.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);

const BENCHES: ReadonlyArray<{ file: string; flags: string[] }> = [
  { file: 'overhead.ts', flags: [] },
  { file: 'provider-requests.ts', flags: [] },
  { file: 'confirmation-latency.ts', flags: [] },
  { file: 'time-to-notice.ts', flags: [] },
  { file: 'scale.ts', flags: ['--expose-gc'] },
  { file: 'redis-commands.ts', flags: [] },
  { file: 'limits-telemetry.ts', flags: [] },
];

function runBench(file: string, flags: string[], out: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...flags, '--import', 'tsx', join(here, file)], {
      cwd: root,
      env: { ...process.env, BENCH_OUT: out },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code ?? 1));
  });
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');

async function main(): Promise<void> {
  const info = machine();
  const loadBefore = load();
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'payrouter-bench-'));
  const sections: BenchSection[] = [];
  const failed: string[] = [];
  try {
    for (const { file, flags } of BENCHES) {
      process.stderr.write(`\n▶ ${file}\n`);
      const out = join(dir, `${file}.json`);
      const code = await runBench(file, flags, out);
      if (code !== 0) {
        failed.push(file);
        continue;
      }
      sections.push(JSON.parse(readFileSync(out, 'utf8')) as BenchSection);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const seconds = Math.round((Date.now() - started) / 1000);
  let findings = '';
  try {
    findings = readFileSync(join(here, 'support', 'findings.md'), 'utf8').trim();
  } catch {
    // no findings written yet
  }

  const document = [
    '# payrouter benchmarks',
    '',
    'Rewritten by `npm run bench` (`node --import tsx bench/run-all.ts`), which runs every benchmark below in',
    'its own node process. Ratios are measured within one run; absolute numbers depend on the machine and on',
    'whatever else it was doing (the load average is recorded for that reason). No test asserts on timings.',
    '',
    `- Run: ${new Date(started).toISOString()}, ${seconds} s in all${failed.length > 0 ? `; FAILED: ${failed.join(', ')}` : ''}`,
    `- Machine: ${info.nproc} CPUs (\`nproc\`), ${info.cpu}, ${info.memoryGiB} GiB RAM, Node ${info.node}`,
    `- Load average (1, 5, 15 min) before: ${loadBefore}; after: ${load()}`,
    '',
    ...sections.flatMap((s) => [`## ${s.title}`, '', `\`${s.command}\``, '', s.markdown, '']),
    ...(findings === '' ? [] : [findings, '']),
  ].join('\n');
  writeFileSync(join(here, 'RESULTS.md'), document);
  process.stderr.write(`\nbench/RESULTS.md written (${seconds} s)\n`);
  if (failed.length > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});

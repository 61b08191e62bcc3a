// The tools the end-to-end tests drive but no one here wrote: Node 22 and the official MCP
// Inspector CLI, installed beside the system Node by scripts/install-tools.sh (`npm test` runs it).
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TOOLS_BIN = join(REPO_ROOT, '.tools/node_modules/.bin');
const INSTALL_HINT =
  '`npm test` installs it; or run `bash scripts/install-tools.sh` (into .tools/, the system Node stays as is).';

function required(path: string, what: string): string {
  if (!existsSync(path)) throw new Error(`${what} is missing: ${path} does not exist. ${INSTALL_HINT}`);
  return realpathSync(path);
}

/** Node 22 from .tools/ (the Inspector needs it; the project itself runs on Node 20). */
export function node22(): string {
  const candidates = [join(REPO_ROOT, '.tools/node_modules/node/bin/node'), join(TOOLS_BIN, 'node')];
  const found = candidates.find((p) => existsSync(p));
  return required(found ?? candidates[0]!, 'Node 22');
}

/** The Inspector's launcher script (`mcp-inspector`), run with node22() rather than its shebang. */
export function inspectorCli(): string {
  return required(
    join(TOOLS_BIN, 'mcp-inspector'),
    'The MCP Inspector CLI (@modelcontextprotocol/inspector)',
  );
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a program to completion; a run that exceeds `timeoutMs` is killed and reported as such. */
export function run(
  command: string,
  args: string[],
  options: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${command} ${args.join(' ')} did not finish within ${options.timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** `mcp-inspector --cli <args>` under Node 22, with .tools/node_modules/.bin first on PATH. */
export function runInspector(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  const node = node22();
  const cli = inspectorCli();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...options.env,
    PATH: `${TOOLS_BIN}${delimiter}${process.env['PATH'] ?? ''}`,
  };
  // No colours or update checks in captured output.
  env['NO_COLOR'] = '1';
  delete env['FORCE_COLOR'];
  return run(node, [cli, '--cli', ...args], { timeoutMs: options.timeoutMs ?? 20_000, env });
}

import { Session } from 'node:inspector/promises';

/** Where CPU time goes, by part of the code: self time of each profile sample, grouped by file. */
export type ProfileShares = Array<{ part: string; percent: number }>;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const PARTS: ReadonlyArray<[string, (url: string, fn: string) => boolean]> = [
  ['payrouter store (src/store: copies, LRU, validation calls)', (u) => u.includes('/src/store/')],
  ['payrouter router (src/router)', (u) => u.includes('/src/router/')],
  ['payrouter flows, confirmation, money (other src/)', (u) => u.includes('/src/')],
  ['zod (record and argument validation)', (u) => u.includes('/node_modules/zod/')],
  ['lru-cache', (u) => u.includes('/node_modules/lru-cache/')],
  ['MCP SDK (protocol, transport, tool dispatch)', (u) => u.includes('/@modelcontextprotocol/')],
  ['garbage collector', (_u, f) => f === '(garbage collector)'],
  ['node internals and builtins', (u) => u.startsWith('node:') || u === ''],
];

/** Run `work` under the V8 CPU profiler and report self-time shares by part. */
export async function profileShares(work: () => Promise<void>): Promise<ProfileShares> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  try {
    await work();
  } finally {
    // stop below either way
  }
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
  session.disconnect();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const delta = profile.timeDeltas[i] ?? 0;
    if (node === undefined || node.callFrame.functionName === '(idle)') return;
    const { url, functionName } = node.callFrame;
    const part = PARTS.find(([, test]) => test(url, functionName))?.[0] ?? 'other (tsx loader, bench code)';
    totals.set(part, (totals.get(part) ?? 0) + delta);
    total += delta;
  });
  return [...totals.entries()]
    .map(([part, time]) => ({ part, percent: (time / total) * 100 }))
    .sort((a, b) => b.percent - a.percent);
}

/**
 * The test fixture: `test` (also exported as `it`) built with vitest's `test.extend`. A fixture is
 * set up only when a test (or a `test.beforeAll` for file-scoped ones) names it in its context, and
 * torn down by vitest, also when the test fails.
 *
 *   fixture          scope  gives                                            teardown
 *   ---------------  -----  -----------------------------------------------  -------------------------------------
 *   world            test   the file's sandbox world (startWorld: sandbox,   none per test; the world is closed
 *                           makeServer, runs, runsOf), its sandbox reset      after the file (fileWorld)
 *                           and runs emptied before the test
 *   httpWorld        test   the same for startHttpWorld (a world plus an      as world (fileHttpWorld)
 *                           HTTP server at publicUrl), reset before the test
 *   connectClient    test   paid-server's connectClient: an SDK Client over   every client it made is closed after
 *                           InMemory to a server                              the test (close() stays idempotent)
 *   closeAfter       test   closeAfter(...things): things with close()        closed after the test, last first
 *   fileWorld        file   one startWorld() for the file, not reset          world.close() after the file
 *   fileHttpWorld    file   one startHttpWorld() for the file, not reset      close() after the file
 *   fileWalleotSandbox   file  one startWalleotSandbox() for the file   close() after the file
 *   sandbox          file   one startSandbox() (Walleot + Stripe stand-ins)   sandbox.close() after the file
 *   walleotSandbox   test   the file's Walleot stand-in (startWalleotSandbox) reset() after the test; closed
 *                           over fileWalleotSandbox                          after the file
 *   redis            file   a real redis-server on a free port (redis-server  stop() after the file
 *                           test/support/redis-server.ts), empty at start
 *   lateHttp         file   listenLate(): a node:http server whose listener   close() after the file
 *                           is set later (publicUrl must name its port)
 *
 * File scope where starting one per test would be slow (a redis-server process, sandbox servers);
 * the test-scoped world/httpWorld give each test a clean sandbox over that one file's world.
 * File fixtures are torn down after the file's afterAll hooks, so those may still use them.
 */
import { test as base } from 'vitest';
import { startWalleotSandbox } from '../../src/sandbox/walleot.js';
import { startSandbox } from '../../src/sandbox.js';
import { listenLate, startHttpWorld } from './http-world.js';
import { connectClient as connect, startWorld } from './paid-server.js';
import { startRedisServer } from './redis-server.js';

type Closable = { close(): unknown };
type OnCleanup = (cleanup: () => void | Promise<void>) => void;

/** A fixture that needs no other fixture. vitest reads a fixture's dependencies from its first
 * parameter's pattern, which must be an object pattern: here an empty one. */
const standalone =
  <T>(setup: (onCleanup: OnCleanup) => Promise<T> | T) =>
  // biome-ignore lint/correctness/noEmptyPattern: vitest requires a destructuring pattern here
  async ({}: object, { onCleanup }: { onCleanup: OnCleanup }): Promise<T> =>
    setup(onCleanup);

export const test = base
  .extend(
    'fileWorld',
    { scope: 'file' },
    standalone(async (onCleanup) => {
      const world = await startWorld();
      onCleanup(() => world.close());
      return world;
    }),
  )
  .extend(
    'fileHttpWorld',
    { scope: 'file' },
    standalone(async (onCleanup) => {
      const world = await startHttpWorld();
      onCleanup(() => world.close());
      return world;
    }),
  )
  .extend(
    'sandbox',
    { scope: 'file' },
    standalone(async (onCleanup) => {
      const sandbox = await startSandbox();
      onCleanup(() => sandbox.close());
      return sandbox;
    }),
  )
  .extend(
    'fileWalleotSandbox',
    { scope: 'file' },
    standalone(async (onCleanup) => {
      const sandbox = await startWalleotSandbox();
      onCleanup(() => sandbox.close());
      return sandbox;
    }),
  )
  .extend(
    'redis',
    { scope: 'file' },
    standalone(async (onCleanup) => {
      const redis = await startRedisServer();
      onCleanup(() => redis.stop());
      return redis;
    }),
  )
  .extend(
    'lateHttp',
    { scope: 'file' },
    standalone(async (onCleanup) => {
      const http = await listenLate();
      onCleanup(() => http.close());
      return http;
    }),
  )
  .extend('world', async ({ fileWorld }) => {
    fileWorld.sandbox.reset();
    fileWorld.runs.length = 0;
    return fileWorld;
  })
  .extend('walleotSandbox', async ({ fileWalleotSandbox }, { onCleanup }) => {
    onCleanup(() => fileWalleotSandbox.reset());
    return fileWalleotSandbox;
  })
  .extend('httpWorld', async ({ fileHttpWorld }) => {
    fileHttpWorld.sandbox.reset();
    fileHttpWorld.runs.length = 0;
    return fileHttpWorld;
  })
  .extend(
    'connectClient',
    standalone(async (onCleanup) => {
      const opened: Array<() => Promise<void>> = [];
      onCleanup(async () => {
        for (const close of opened.splice(0).reverse()) await close();
      });
      return async (...args: Parameters<typeof connect>) => {
        const connection = await connect(...args);
        let closing: Promise<void> | undefined;
        const close = () => {
          closing ??= connection.close();
          return closing;
        };
        opened.push(close);
        return { ...connection, close };
      };
    }),
  )
  .extend(
    'closeAfter',
    standalone(async (onCleanup) => {
      const opened: Closable[] = [];
      onCleanup(async () => {
        for (const item of opened.splice(0).reverse()) await item.close();
      });
      return (...items: Closable[]): void => {
        opened.push(...items);
      };
    }),
  );

export const it = test;

/** What the `closeAfter` fixture gives, for helpers that take it as an argument. */
export type CloseAfter = (...items: Closable[]) => void;

/** The client factory the `connectClient` fixture gives, for helpers that take it as an argument. */
export type ConnectClient = (
  ...args: Parameters<typeof connect>
) => Promise<Awaited<ReturnType<typeof connect>>>;

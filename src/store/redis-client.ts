/**
 * The part of an ioredis client that `redisStore` uses, written out so the package's types do not
 * need ioredis (an optional peer): an ioredis `Redis` or `Cluster` is one, and so is any client
 * with these methods and ioredis's replies.
 */
export interface RedisClient {
  get(key: string): Promise<string | null>;
  mget(...keys: string[]): Promise<Array<string | null>>;
  set(key: string, value: string, px: 'PX', milliseconds: number): Promise<'OK' | null>;
  set(key: string, value: string, px: 'PX', milliseconds: number, nx: 'NX'): Promise<'OK' | null>;
  publish(channel: string, message: string): Promise<number>;
  evalsha(sha: string, numKeys: number, ...keysAndArgs: Array<string | number>): Promise<unknown>;
  eval(script: string, numKeys: number, ...keysAndArgs: Array<string | number>): Promise<unknown>;
  zrangebyscore(
    key: string,
    min: number | string,
    max: number | string,
    limit: 'LIMIT',
    offset: number,
    count: number,
  ): Promise<string[]>;
  zadd(key: string, score: number, member: string): Promise<number | string>;
  zrem(key: string, member: string): Promise<number>;
  pipeline(): RedisPipeline;
  /**
   * A second connection, for the store's subscriber (ioredis's `duplicate`, given
   * `{ connectionName }`; its parameter is left open, as Redis and Cluster type it differently).
   */
  duplicate(...override: never[]): RedisSubscriberClient;
}

/** The batched commands of the store's ledger appends (ioredis `pipeline()`). */
export interface RedisPipeline {
  zadd(key: string, score: number, member: string): RedisPipeline;
  pexpire(key: string, milliseconds: number): RedisPipeline;
  zremrangebyscore(key: string, min: number | string, max: number | string): RedisPipeline;
  zremrangebyrank(key: string, start: number, stop: number): RedisPipeline;
  exec(): Promise<Array<[error: Error | null, result: unknown]> | null>;
}

/** The connection `duplicate()` gives: it subscribes to the status channel, and is closed by the store. */
export interface RedisSubscriberClient {
  readonly status: string;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  subscribe(channel: string): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

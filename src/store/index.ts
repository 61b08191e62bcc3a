export { bindingKey } from '../core/intent/record.js';
export type { StatusListener } from './listeners.js';
export { type MemoryStoreOptions, memoryStore } from './memory.js';
export { type RedisStoreOptions, redisStore } from './redis.js';
export type { RedisClient, RedisPipeline, RedisSubscriberClient } from './redis-client.js';
export { intentRecordSchema, statusChangeSchema } from './schema.js';
export type * from './types.js';

// ioredis connections for cluster mode. Commands fail fast while Redis is unreachable (no offline
// queue), so a node keeps serving its local sockets instead of piling up work; the subscriber
// connections resubscribe by themselves after a reconnect.
import { Redis, type RedisOptions } from 'ioredis';

export interface RedisTarget {
  url?: string;
  options?: Record<string, unknown>;
}

/** The longest a client waits between two reconnect attempts. */
export const RECONNECT_MAX_DELAY_MS = 1000;
const retryStrategy = (times: number) => Math.min(50 * times, RECONNECT_MAX_DELAY_MS);

export function commandClient(target: RedisTarget, name: string): Redis {
  const opts: RedisOptions = {
    ...(target.options as RedisOptions),
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy,
    lazyConnect: false,
  };
  return target.url ? new Redis(target.url, opts) : new Redis(opts);
}

export function subscriberClient(target: RedisTarget, name: string): Redis {
  const opts: RedisOptions = { ...(target.options as RedisOptions), connectionName: name, retryStrategy, autoResubscribe: true };
  return target.url ? new Redis(target.url, opts) : new Redis(opts);
}

/** Resolves when the client is ready, or after timeoutMs (the node starts anyway and catches up). */
export function whenReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      client.off('ready', onReady);
      resolve(false);
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(t);
      resolve(true);
    };
    client.once('ready', onReady);
  });
}

/** Scripts registered with defineCommand, called by name: the keys first, then the other arguments. */
export type Scripted = Redis & Record<string, (...args: (string | number)[]) => Promise<unknown>>;

/**
 * A Lua script and how many keys (KEYS) it is given, the rest being ARGV: a fixed number, or
 * 'counted' when it varies and the caller passes it first.
 */
export interface LuaScript {
  keys: number | 'counted';
  lua: string;
}

/** Registers Lua scripts as commands of the client (once per client and name). */
export function defineScripts(redis: Redis, scripts: Record<string, LuaScript>): Scripted {
  for (const [name, { keys, lua }] of Object.entries(scripts)) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: keys === 'counted' ? undefined : keys, lua });
  }
  return redis as Scripted;
}

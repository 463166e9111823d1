// Hand checks of trigger bodies against the app's limits and the protocol's name rules (spec §9.3, §11).
import type { App } from '../apps/app.js';
import { isValidChannelName } from '../protocol/channels.js';
import { reservedEventName } from '../protocol/event-names.js';
import { HttpError } from './errors.js';

export interface TriggerEvent {
  name: string;
  data: string;
  channels: string[];
  socketId?: string;
  info?: string[];
}

const SOCKET_ID_RE = /^\d+\.\d+$/;

function object(v: unknown, what: string): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, `${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

export function parseTrigger(app: App, raw: unknown, where = 'body', single = false): TriggerEvent {
  const o = object(raw, where);
  const { name, data } = o;
  if (typeof name !== 'string' || name === '') throw new HttpError(400, `${where}: "name" is required`);
  if (name.length > app.maxEventNameLength) throw new HttpError(400, `${where}: event name is longer than ${app.maxEventNameLength} characters`);
  // Hosted Pusher answers 400 too (spec §9.3).
  const reserved = reservedEventName(name);
  if (reserved) throw new HttpError(400, `${where}: ${reserved}`);
  if (typeof data !== 'string') throw new HttpError(400, `${where}: "data" is required and must be a string`);
  if (Buffer.byteLength(data) > app.maxEventPayloadBytes) {
    throw new HttpError(413, `${where}: event data is larger than ${app.maxEventPayloadInKb} KB`);
  }
  let channels: string[];
  if (!single && o.channels !== undefined) {
    if (!Array.isArray(o.channels) || o.channels.length === 0) throw new HttpError(400, `${where}: "channels" must be a non-empty array`);
    const named = o.channels as unknown[];
    channels = (named.length === 1 ? named : [...new Set(named)]).map((c) => {
      if (typeof c !== 'string') throw new HttpError(400, `${where}: channel names must be strings`);
      return c;
    });
  } else if (typeof o.channel === 'string') {
    channels = [o.channel];
  } else {
    throw new HttpError(400, `${where}: "channel" or "channels" is required`);
  }
  if (channels.length > app.maxEventChannelsAtOnce) {
    throw new HttpError(400, `${where}: cannot trigger on more than ${app.maxEventChannelsAtOnce} channels at once`);
  }
  for (const c of channels) {
    if (c.length > app.maxChannelNameLength || !isValidChannelName(c)) throw new HttpError(400, `${where}: invalid channel name ${JSON.stringify(c)}`);
  }
  let socketId: string | undefined;
  if (o.socket_id !== undefined && o.socket_id !== null) {
    if (typeof o.socket_id !== 'string' || !SOCKET_ID_RE.test(o.socket_id)) throw new HttpError(400, `${where}: invalid socket_id`);
    socketId = o.socket_id;
  }
  let info: string[] | undefined;
  if (o.info !== undefined) {
    if (typeof o.info !== 'string') throw new HttpError(400, `${where}: "info" must be a comma-separated string`);
    info = parseInfo(o.info, ['user_count', 'subscription_count']);
  }
  return { name, data, channels, socketId, info };
}

export function parseInfo(value: string, allowed: string[]): string[] {
  const parts = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of parts) if (!allowed.includes(p)) throw new HttpError(400, `unsupported info attribute ${p}`);
  return parts;
}

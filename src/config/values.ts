// Reading a setting's value to its type: environment text, or a file value that may be a string
// (Soketi files often hold "50" or "true"). Errors name the setting as the user wrote it.
import { ConfigError } from './errors.js';
import type { Kind } from './env-names.js';

const NUMBER = /^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/;

/** A file value (or an env text) read as `kind`; values of another type are left for the schema to report. */
export function coerce(label: string, kind: Kind | 'any' | undefined, v: unknown): unknown {
  if (typeof v !== 'string') {
    if (kind === 'bool' && (v === 0 || v === 1)) return v === 1;
    if (kind === 'string' && typeof v === 'number') return String(v);
    return v;
  }
  switch (kind) {
    case 'int':
    case 'num': {
      if (!NUMBER.test(v)) throw new ConfigError(`${label}: expected ${kind === 'int' ? 'an integer' : 'a number'}, got "${v}"`);
      const n = Number(v);
      if (kind === 'int' && !Number.isInteger(n)) throw new ConfigError(`${label}: expected an integer, got "${v}"`);
      return n;
    }
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(v.trim())) return true;
      if (/^(0|false|no|off)$/i.test(v.trim())) return false;
      throw new ConfigError(`${label}: expected true or false, got "${v}"`);
    case 'json':
      try {
        return JSON.parse(v);
      } catch {
        throw new ConfigError(`${label}: not valid JSON`);
      }
    case 'list':
      if (v.trim().startsWith('[')) return coerce(label, 'json', v);
      return v.split(',').map((s) => s.trim()).filter(Boolean);
    case 'any':
      // as Soketi reads its environment: JSON when it parses, the text otherwise
      try {
        return JSON.parse(v);
      } catch {
        return v;
      }
    default:
      return v;
  }
}

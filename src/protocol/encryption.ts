// End-to-end encrypted channels (spec §3.2, `private-encrypted-`), done by the server for backends
// whose Pusher SDK cannot encrypt: exactly what the official SDKs do, so pusher-js decrypts it. The
// channel's shared secret is SHA-256(channel name bytes ‖ 32-byte master key); the payload is
// {"nonce", "ciphertext"} (base64) of NaCl secretbox over the UTF-8 data, with a random 24-byte nonce.
import { createHash } from 'node:crypto';
import nacl from 'tweetnacl';
import { dataObject } from './parse.js';

export function channelSharedSecret(channel: string, masterKey: Uint8Array): Uint8Array {
  return createHash('sha256').update(Buffer.concat([Buffer.from(channel), masterKey])).digest();
}

/** The event data as an encrypted channel carries it. `data` is the string the app triggered. */
export function encryptData(channel: string, masterKey: Uint8Array, data: string): string {
  const nonce = nacl.randomBytes(nacl.secretbox.nonceLength);
  const ciphertext = nacl.secretbox(Buffer.from(data, 'utf8'), nonce, channelSharedSecret(channel, masterKey));
  return JSON.stringify({ nonce: Buffer.from(nonce).toString('base64'), ciphertext: Buffer.from(ciphertext).toString('base64') });
}

/** True when an SDK already encrypted the data: {nonce, ciphertext} and nothing else (relayed untouched). */
export function isEncryptedPayload(data: string): boolean {
  const o = dataObject(data);
  return !!o && Object.keys(o).length === 2 && typeof o.nonce === 'string' && typeof o.ciphertext === 'string';
}

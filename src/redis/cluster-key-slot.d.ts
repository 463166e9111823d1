// Types for cluster-key-slot (ioredis's own dependency, which ships none): Redis Cluster's CRC16 slot of a key.
declare module 'cluster-key-slot' {
  /** The hash slot (0-16383) of a key, from its hash tag when it has one. */
  export default function calculateSlot(key: string | Buffer): number;
}

// pusher-js ships CommonJS (module.exports = Pusher) with ESM-style typings; under NodeNext the default
// import is typed as the module namespace. This re-exports the class with its real type.
import PusherModule from 'pusher-js';

type PusherClass = typeof PusherModule.default;
const mod = PusherModule as unknown as PusherClass & { default?: PusherClass };
export const Pusher: PusherClass = mod.default ?? mod;
export type PusherClient = InstanceType<PusherClass>;

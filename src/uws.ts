// The uWebSockets.js build in use. The npm alias we install silently falls back to a slow pure-JS shim
// when its native binary does not load; a production node must not run on that by accident.
import uWS from 'uWebSockets.js';

export const uwsIsNative = String(uWS.App).includes('[native code]');
export { uWS };

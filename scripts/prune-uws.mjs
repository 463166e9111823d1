// Keeps only the uWebSockets.js binary this Node loads: both uWS packages ship one binary per
// platform, architecture and Node ABI (about 220 MB together), and an image needs one (about 6 MB).
// Loads the server's own choice (dist/src/uws.js, so the rule is the server's), then deletes every
// other uws_*.node under node_modules. Run in the folder that holds dist/ and node_modules/, on the
// system the binaries are for (the Dockerfile's prod-deps stage): `node scripts/prune-uws.mjs`.
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const { uwsSource, uwsIsNative, uwsLoadReport } = await import(pathToFileURL(resolve('dist/src/uws.js')).href);
if (!uwsIsNative || !uwsSource.binary) {
  console.error(`no native uWebSockets.js binary loads here, nothing pruned:\n${uwsLoadReport()}`);
  process.exit(1);
}
const keep = resolve(uwsSource.binary);
let freed = 0;
const walk = (dir) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else if (/^uws_.*\.node$/.test(entry.name) && resolve(path) !== keep) {
      freed += statSync(path).size;
      rmSync(path);
    }
  }
};
walk(resolve('node_modules'));
console.error(`kept ${keep}; removed ${(freed / 1024 / 1024).toFixed(0)} MB of other uWS binaries`);

// Builds the debug console's page (src/console/page/: plain TypeScript and DOM, issue 21) into
// dist/console/: one browser script bundled by esbuild, with the page's HTML and CSS beside it. The
// node serves that folder under <pathPrefix>/ripple/console/ (src/console/routes.ts). Rebuilt only
// when a source is newer than the build. `node scripts/build-console.mjs` (build-server.mjs runs it;
// the console's tests run it too).
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src', 'console', 'page');
const out = join(root, 'dist', 'console');

export async function buildConsolePage() {
  // The page also bundles console/events.ts (the stream's record shape and the data cut).
  const sources = [...readdirSync(src).map((f) => join(src, f)), join(root, 'src', 'console', 'events.ts')].map((f) => statSync(f).mtimeMs);
  const built = join(out, 'console.js');
  if (existsSync(built) && statSync(built).mtimeMs >= Math.max(...sources)) return false;
  const { build } = await import('esbuild');
  mkdirSync(out, { recursive: true });
  copyFileSync(join(src, 'index.html'), join(out, 'index.html'));
  copyFileSync(join(src, 'console.css'), join(out, 'console.css'));
  await build({
    absWorkingDir: root,
    entryPoints: [join(src, 'main.ts')],
    outfile: built,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    logLevel: 'warning',
  });
  return true;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (await buildConsolePage()) console.error('built the console page');
}

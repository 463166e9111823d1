// Builds the package into dist/: ESM and CommonJS for bundlers and Node, an IIFE that defines the global
// `RippleRecovery` for a script tag (plain and minified), and type declarations for both module kinds.
// Run from anywhere: `node recovery-plugin/scripts/build.mjs`.
import { build } from 'esbuild';
import ts from 'typescript';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
const common = { absWorkingDir: root, entryPoints: ['src/index.ts'], bundle: true, target: 'es2018', sourcemap: true, logLevel: 'warning' };
const browser = { ...common, format: 'iife', globalName: 'RippleRecovery', platform: 'browser' };
await Promise.all([
  build({ ...common, format: 'esm', platform: 'neutral', outfile: 'dist/esm/index.js' }),
  build({ ...common, format: 'cjs', platform: 'node', outfile: 'dist/cjs/index.js' }),
  build({ ...browser, outfile: 'dist/browser/ripple-recovery.js' }),
  build({ ...browser, minify: true, outfile: 'dist/browser/ripple-recovery.min.js' }),
]);
// The root package says "type": "module"; this makes dist/cjs (code and declarations) CommonJS.
writeFileSync(join(dist, 'cjs', 'package.json'), '{ "type": "commonjs" }\n');

const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail([d]) });
const program = ts.createProgram(config.fileNames, config.options);
const emitted = program.emit();
const diagnostics = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics];
if (diagnostics.length) fail(diagnostics);
for (const file of readdirSync(join(dist, 'esm'))) {
  if (file.endsWith('.d.ts')) copyFileSync(join(dist, 'esm', file), join(dist, 'cjs', file));
}

function fail(diagnostics) {
  const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' };
  console.error(ts.formatDiagnostics(diagnostics, host));
  process.exit(1);
}

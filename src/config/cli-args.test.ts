import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCliArgs, UsageError } from './cli-args.js';

test('start is the default command; start, help, --help, -h, --version, -v', () => {
  assert.equal(parseCliArgs([]).command, 'start');
  assert.equal(parseCliArgs(['start']).command, 'start');
  for (const a of [['--help'], ['-h'], ['help'], ['start', '--help']]) assert.equal(parseCliArgs(a).command, 'help', a.join(' '));
  for (const a of [['--version'], ['-v']]) assert.equal(parseCliArgs(a).command, 'version');
});

test('--config FILE, --config=FILE and -c FILE; --port, --host, --debug', () => {
  assert.equal(parseCliArgs(['--config', 'a.json']).configFile, 'a.json');
  assert.equal(parseCliArgs(['start', '--config=b.json']).configFile, 'b.json');
  assert.equal(parseCliArgs(['-c', 'c.json']).configFile, 'c.json');
  assert.deepEqual(parseCliArgs(['--port=7001', '--host', '::1', '--debug']), { command: 'start', configFile: undefined, port: '7001', host: '::1', debug: true, workers: undefined });
  assert.equal(parseCliArgs(['--workers', '4']).workers, '4');
});

test('anything unknown is a usage error, never a silent start', () => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /^unknown option --bogus$/],
    [['-x'], /^unknown option -x$/],
    [['stat'], /^unknown command "stat"$/],
    [['start', 'extra'], /^unexpected argument "extra"$/],
    [['--config'], /^--config needs a value$/],
    [['--config='], /^--config needs a value$/],
    [['--debug=1'], /^--debug takes no value$/],
  ];
  for (const [argv, message] of cases) {
    assert.throws(() => parseCliArgs(argv), (e: Error) => e instanceof UsageError && message.test(e.message), argv.join(' '));
  }
});

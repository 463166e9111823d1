// deploy/ checked against the server it deploys: every YAML parses; env names are ones the config
// loader reads and their values pass it; ports, probe paths, selectors and shutdown timings line up;
// and the Dockerfile's runtime stage is reproduced without Docker (its files, production dependencies
// only) and started, with its own HEALTHCHECK command run against it.
import { test, before, after } from 'node:test';
import semver from 'semver';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { ConfigSchema } from '../../src/config/schema.js';
import { loadConfig } from '../../src/config/load.js';
import { freePort, repoRoot, startNode, type NodeHandle } from '../../src/testing/harness.js';
import { eventually } from '../../src/testing/eventually.js';
import {
  composeDefaults,
  copyFromContext,
  copyProductionModules,
  deployDir,
  dockerCopy,
  dockerEnv,
  dockerIgnore,
  filesUnder,
  parseDockerfile,
  serverEnvNames,
  yamlDocs,
  type DockerStage,
} from './support/deploy-files.js';
import { nginxConfPath } from './support/deploy-nginx.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const k8sDir = join(deployDir, 'k8s');
const composePath = join(deployDir, 'docker-compose.yml');
const dockerfilePath = join(deployDir, 'Dockerfile');
const allowedEnv = serverEnvNames();

/** Every Kubernetes object under deploy/k8s, with the file it came from. */
function k8sObjects(): { file: string; obj: Obj }[] {
  return filesUnder(k8sDir, ['.yaml', '.yml']).flatMap((file) => yamlDocs(file).map((obj) => ({ file: basename(file), obj: obj as Obj })));
}
function only(kind: string, name?: string): Obj {
  const found = k8sObjects().filter((o) => o.obj.kind === kind && (name === undefined || o.obj.metadata?.name === name));
  assert.equal(found.length, 1, `exactly one ${kind}${name ? ` ${name}` : ''} in deploy/k8s (found ${found.length})`);
  return found[0].obj;
}
const gateway = () => only('Deployment', 'ripple');
const gatewayContainer = () => {
  const cs = gateway().spec.template.spec.containers as Obj[];
  assert.equal(cs.length, 1);
  return cs[0];
};
/** The env a gateway pod gets: its ConfigMap and Secret (envFrom) and its own env entries. */
function podEnv(): Record<string, string> {
  const c = gatewayContainer();
  const env: Record<string, string> = {};
  for (const ref of c.envFrom ?? []) {
    if (ref.configMapRef) Object.assign(env, only('ConfigMap', ref.configMapRef.name).data);
    if (ref.secretRef) {
      const s = only('Secret', ref.secretRef.name);
      Object.assign(env, s.stringData, Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), 'base64').toString()])));
    }
  }
  for (const e of c.env ?? []) env[e.name] = e.value ?? (e.valueFrom?.fieldRef ? 'ripple-6d5f7c9b8-x2x7q' : '');
  return env;
}
function containerPortNamed(c: Obj, port: string | number): number {
  if (typeof port === 'number') return port;
  const p = (c.ports as Obj[]).find((x) => x.name === port);
  assert.ok(p, `container port named ${port}`);
  return p.containerPort;
}
function labelsMatch(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}
function compose(): Obj {
  const docs = yamlDocs(composePath);
  assert.equal(docs.length, 1);
  return docs[0] as Obj;
}
function composeEnv(svc: Obj): Record<string, string> {
  const e = svc.environment ?? {};
  const pairs: [string, string][] = Array.isArray(e)
    ? e.map((s: string) => [s.split('=')[0], s.split('=').slice(1).join('=')])
    : Object.entries(e).map(([k, v]) => [k, String(v ?? '')]);
  return Object.fromEntries(pairs.map(([k, v]) => [k, composeDefaults(v)]));
}
/** Compose services that build the server image. */
function composeNodes(): [string, Obj][] {
  return Object.entries(compose().services as Obj).filter(([, s]) => s.build);
}
function seconds(d: string | number): number {
  if (typeof d === 'number') return d;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(d.trim());
  assert.ok(m, `duration ${d}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}
function nginxConf(): string {
  return readFileSync(nginxConfPath, 'utf8').replace(/#.*$/gm, '');
}
function dockerStages(): DockerStage[] {
  return parseDockerfile(readFileSync(dockerfilePath, 'utf8'));
}
function instr(stage: DockerStage, cmd: string) {
  return stage.instructions.filter((i) => i.cmd === cmd);
}
/** Settings every node runs with when nothing sets them (the schema's defaults). */
const defaults = ConfigSchema.parse({ apps: [{ id: 'a', key: 'k', secret: 's' }] });

let node: NodeHandle;
const temps: string[] = [];

before(async () => {
  node = await startNode();
});

after(async () => {
  await node?.stop();
  if (!process.env.KEEP_TMP) for (const d of temps) rmSync(d, { recursive: true, force: true });
});

test('every YAML file under deploy/ parses, and the k8s ones are Kubernetes objects', () => {
  const files = filesUnder(deployDir, ['.yaml', '.yml']);
  assert.ok(files.length >= 7, `YAML files found: ${files.map((f) => relative(deployDir, f)).join(', ')}`);
  for (const f of files) assert.ok(yamlDocs(f).length > 0, `${relative(deployDir, f)} holds a document`);
  for (const { file, obj } of k8sObjects()) {
    assert.ok(typeof obj.apiVersion === 'string' && typeof obj.kind === 'string', `${file}: apiVersion and kind`);
    if (obj.kind !== 'Kustomization') assert.ok(obj.metadata?.name, `${file}: ${obj.kind} has metadata.name`);
  }
});

test('kustomization.yaml lists every manifest except the example Secret', () => {
  const k = only('Kustomization');
  const manifests = filesUnder(k8sDir, ['.yaml', '.yml'])
    .map((f) => basename(f))
    .filter((f) => f !== 'kustomization.yaml' && !f.includes('example'));
  assert.deepEqual([...k.resources].sort(), manifests.sort());
  for (const r of k.resources) assert.ok(existsSync(join(k8sDir, r)), r);
});

test('every environment name in the Dockerfile, compose file and manifests is one the server reads', () => {
  // The allowed set comes from the config loader's own list (src/config/env-names.ts); make sure it holds the basics.
  for (const n of ['PORT', 'HOST', 'REDIS_URL', 'NODE_ID', 'APP_SECRET', 'SHUTDOWN_TIMEOUT_MS']) assert.ok(allowedEnv.has(n), `load.ts reads env.${n}`);
  const used: [string, string][] = [];
  for (const s of dockerStages()) for (const i of instr(s, 'ENV')) for (const k of Object.keys(dockerEnv(i.args))) used.push(['Dockerfile', k]);
  for (const [name, svc] of composeNodes()) for (const k of Object.keys(composeEnv(svc))) used.push([`compose ${name}`, k]);
  for (const { file, obj } of k8sObjects()) {
    if (obj.kind === 'ConfigMap' || obj.kind === 'Secret') {
      for (const k of Object.keys({ ...obj.data, ...obj.stringData })) used.push([file, k]);
    }
    for (const c of (obj.spec?.template?.spec?.containers ?? []) as Obj[]) {
      if (c.name === 'redis') continue; // Redis's own container
      for (const e of c.env ?? []) used.push([file, e.name]);
    }
  }
  assert.ok(used.length > 10);
  const unknown = used.filter(([, k]) => !allowedEnv.has(k));
  assert.deepEqual(unknown, [], `names the server never reads: ${unknown.map((u) => u.join(': ')).join(', ')}`);
});

test('the values set in the k8s ConfigMap+Secret, the compose nodes and the Dockerfile pass the real config loader', () => {
  const pod = loadConfig([], podEnv());
  assert.equal(pod.port, containerPortNamed(gatewayContainer(), 'http'));
  assert.equal(pod.host, '0.0.0.0');
  assert.ok(pod.redisUrl, 'k8s pods run in cluster mode');
  assert.equal(pod.apps[0].secret, only('Secret', 'ripple-app').stringData.APP_SECRET);
  for (const [name, svc] of composeNodes()) {
    const cfg = loadConfig([], composeEnv(svc));
    assert.equal(cfg.nodeId, name);
    assert.ok(cfg.redisUrl, `${name} runs in cluster mode`);
  }
  const runtime = dockerStages().at(-1)!;
  const env = Object.assign({}, ...instr(runtime, 'ENV').map((i) => dockerEnv(i.args)));
  const img = loadConfig([], env);
  assert.equal(String(img.port), instr(runtime, 'EXPOSE')[0].args.trim());
});

test('JSON configs under deploy/ pass the server schema and the config loader', () => {
  const files = filesUnder(deployDir, ['.json']);
  assert.ok(files.length >= 1);
  for (const f of files) {
    const parsed = ConfigSchema.safeParse(JSON.parse(readFileSync(f, 'utf8')));
    assert.ok(parsed.success, `${relative(deployDir, f)}: ${parsed.success ? '' : parsed.error.message}`);
    const cfg = loadConfig([], { CONFIG_FILE: f });
    assert.ok(cfg.apps.length >= 1);
  }
});

test('k8s: containerPort = PORT = Service targetPort = probe ports = scrape port', () => {
  const c = gatewayContainer();
  const port = containerPortNamed(c, 'http');
  assert.equal(Number(podEnv().PORT), port);
  const svc = only('Service', 'ripple');
  for (const p of svc.spec.ports as Obj[]) assert.equal(containerPortNamed(c, p.targetPort), port, `Service port ${p.name}`);
  for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
    if (c[probe]) assert.equal(containerPortNamed(c, c[probe].httpGet.port), port, probe);
  }
  assert.equal(Number(gateway().spec.template.metadata.annotations['prometheus.io/port']), port);
});

test('k8s: probes, preStop and the grace period fit the server\'s shutdown', () => {
  const c = gatewayContainer();
  assert.equal(c.readinessProbe.httpGet.path, '/ready');
  assert.equal(c.livenessProbe.httpGet.path, '/health');
  const pre = c.lifecycle.preStop;
  const preStopSeconds = pre.sleep ? Number(pre.sleep.seconds) : Number((pre.exec.command as string[]).at(-1));
  assert.ok(preStopSeconds >= 2 && preStopSeconds <= 15, `preStop sleeps ${preStopSeconds} s`);
  assert.ok(pre.sleep || pre.exec.command[0] === 'sleep', 'preStop is a sleep');
  const shutdownMs = Number(podEnv().SHUTDOWN_TIMEOUT_MS ?? defaults.shutdownTimeoutMs);
  const grace = gateway().spec.template.spec.terminationGracePeriodSeconds;
  assert.ok(grace > preStopSeconds + shutdownMs / 1000, `grace ${grace} s > preStop ${preStopSeconds} s + drain ${shutdownMs / 1000} s`);
  // The image's user, so runAsNonRoot can be verified.
  assert.equal(gateway().spec.template.spec.securityContext.runAsUser, 1000);
});

test('k8s: the Service, PDB and HPA select the Deployment\'s pods', () => {
  const d = gateway();
  const podLabels = d.spec.template.metadata.labels;
  assert.ok(labelsMatch(d.spec.selector.matchLabels, podLabels), 'Deployment selector matches its own pods');
  assert.ok(labelsMatch(only('Service', 'ripple').spec.selector, podLabels), 'Service selector');
  const pdb = only('PodDisruptionBudget');
  assert.equal(pdb.apiVersion, 'policy/v1');
  assert.ok(labelsMatch(pdb.spec.selector.matchLabels, podLabels), 'PDB selector');
  assert.equal(pdb.spec.minAvailable, 1);
  const hpa = only('HorizontalPodAutoscaler');
  assert.equal(hpa.apiVersion, 'autoscaling/v2');
  assert.deepEqual(
    { kind: hpa.spec.scaleTargetRef.kind, name: hpa.spec.scaleTargetRef.name, apiVersion: hpa.spec.scaleTargetRef.apiVersion },
    { kind: 'Deployment', name: d.metadata.name, apiVersion: d.apiVersion },
  );
  assert.ok(hpa.spec.minReplicas > pdb.spec.minAvailable, 'the PDB leaves room to evict a pod at the HPA minimum');
  assert.equal(d.spec.replicas, 2);
  const cpu = (hpa.spec.metrics as Obj[]).find((m) => m.type === 'Resource' && m.resource.name === 'cpu');
  assert.ok(cpu, 'HPA scales on CPU');
  assert.ok(gatewayContainer().resources.requests.cpu, 'CPU utilisation needs a CPU request');
  // Other workloads' Services select their own pods, not the gateway's.
  const redisSvc = only('Service', 'ripple-redis');
  const redisDep = only('Deployment', 'ripple-redis');
  assert.ok(labelsMatch(redisSvc.spec.selector, redisDep.spec.template.metadata.labels));
  assert.ok(!labelsMatch(redisSvc.spec.selector, podLabels));
  assert.ok(!labelsMatch(only('Service', 'ripple').spec.selector, redisDep.spec.template.metadata.labels));
  // REDIS_URL names that Service and its port.
  const url = new URL(podEnv().REDIS_URL);
  assert.equal(url.hostname, redisSvc.metadata.name);
  assert.equal(Number(url.port), redisSvc.spec.ports[0].port);
});

test('probe, healthcheck and scrape paths are served by a real node', async () => {
  const c = gatewayContainer();
  const expect: [string, number][] = [
    [c.readinessProbe.httpGet.path, 200],
    [c.livenessProbe.httpGet.path, 200],
    [c.startupProbe.httpGet.path, 200],
    [gateway().spec.template.metadata.annotations['prometheus.io/path'], 200],
  ];
  const hc = instr(dockerStages().at(-1)!, 'HEALTHCHECK')[0].args;
  expect.push([/\/[a-z]+(?=')/.exec(hc)![0], 200]);
  for (const [path, status] of expect) {
    const res = await fetch(`${node.url}${path}`);
    assert.equal(res.status, status, `GET ${path}`);
    if (path === '/metrics') assert.match(await res.text(), /^ripple_/m);
    else await res.arrayBuffer();
  }
});

test('compose: Redis, two nodes built from deploy/Dockerfile, nginx in front with deploy/nginx/nginx.conf', () => {
  const cf = compose();
  const services = cf.services as Obj;
  const nodes = composeNodes();
  assert.ok(nodes.length >= 2, 'two nodes');
  const ids = new Set<string>();
  for (const [name, svc] of nodes) {
    assert.equal(resolve(deployDir, svc.build.context, svc.build.dockerfile), dockerfilePath, `${name} builds deploy/Dockerfile`);
    const env = composeEnv(svc);
    ids.add(env.NODE_ID);
    const redis = new URL(env.REDIS_URL);
    assert.ok(services[redis.hostname], `${name}: REDIS_URL names the ${redis.hostname} service`);
    assert.match(services[redis.hostname].image, /^redis:7/);
    assert.equal(Number(redis.port || 6379), 6379);
    assert.ok(svc.depends_on?.[redis.hostname], `${name} waits for Redis`);
    const shutdownMs = Number(env.SHUTDOWN_TIMEOUT_MS ?? defaults.shutdownTimeoutMs);
    assert.ok(seconds(svc.stop_grace_period) > shutdownMs / 1000, `${name}: stop_grace_period above the drain deadline`);
  }
  assert.equal(ids.size, nodes.length, 'distinct NODE_IDs');

  const nginx = Object.values(services).find((s: Obj) => String(s.image).startsWith('nginx')) as Obj;
  assert.ok(nginx, 'an nginx service');
  const mount = (nginx.volumes as string[]).find((v) => v.endsWith(':/etc/nginx/nginx.conf:ro'))!;
  assert.ok(mount, 'nginx mounts its config read-only');
  assert.equal(resolve(deployDir, mount.split(':')[0]), nginxConfPath);
  assert.equal(nginx.ports.length, 1, 'one published port');
  const containerPort = Number(composeDefaults(String(nginx.ports[0])).split(':').at(-1));
  assert.equal(containerPort, Number(/^\s*listen\s+(\d+);/m.exec(nginxConf())![1]), 'published port = nginx listen port');
  assert.ok(nodes.every(([n]) => nginx.depends_on?.[n]), 'nginx starts after the nodes');
  // Each nginx upstream is exactly the node services, each at the PORT it listens on.
  const upstreams = [...nginxConf().matchAll(/upstream\s+(\w+)\s*\{([^}]*)\}/g)];
  assert.ok(upstreams.length > 0, 'an upstream');
  for (const [, name, body] of upstreams) {
    const servers = [...body.matchAll(/^\s*server\s+([A-Za-z0-9.-]+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`);
    assert.deepEqual(servers.sort(), nodes.map(([n, s]) => `${n}:${composeEnv(s).PORT ?? defaults.port}`).sort(), `upstream ${name}`);
  }
});

test('nginx.conf: WebSocket upgrade, timeouts above the activity timeout, REST and WS to the same upstream', () => {
  const conf = nginxConf();
  assert.match(conf, /map\s+\$http_upgrade\s+\$connection_upgrade\s*\{[^}]*default\s+upgrade;/);
  assert.match(conf, /proxy_http_version\s+1\.1;/);
  assert.match(conf, /proxy_set_header\s+Upgrade\s+\$http_upgrade;/);
  assert.match(conf, /proxy_set_header\s+Connection\s+\$connection_upgrade;/);
  assert.match(conf, /upstream\s+(\w+)\s*\{[^}]*\b(least_conn|ip_hash);/);
  const upstream = /upstream\s+(\w+)/.exec(conf)![1];
  for (const loc of ['/app/', '/apps/']) {
    const re = new RegExp(`location\\s+${loc.replace(/\//g, '\\/')}\\s*\\{[^}]*proxy_pass\\s+http://${upstream};`);
    assert.match(conf, re, `location ${loc} proxies to ${upstream}`);
  }
  for (const d of ['proxy_read_timeout', 'proxy_send_timeout']) {
    const v = seconds(new RegExp(`${d}\\s+(\\S+);`).exec(conf)![1]);
    assert.ok(v > defaults.activityTimeout + defaults.pongTimeout, `${d} ${v} s > ${defaults.activityTimeout} + ${defaults.pongTimeout} s`);
  }
  const body = Number(/client_max_body_size\s+(\d+)m;/.exec(conf)![1]) * 1024 * 1024;
  assert.ok(body >= defaults.maxRequestBytes, 'nginx accepts the bodies the REST API accepts');
});

test('Dockerfile: multi-stage on a supported Node and a Debian whose glibc loads its uWS build, npm ci + build, production deps, non-root, healthcheck, CMD', () => {
  const stages = dockerStages();
  assert.ok(stages.length >= 2, 'multi-stage');
  for (const s of stages) {
    const m = /^node:(\d+)-(bookworm|trixie)(-slim)?$/.exec(s.from);
    assert.ok(m, `${s.name}: ${s.from} is a Debian-based official node image (not Alpine: uWS needs glibc)`);
    assert.ok(['20', '22', '24'].includes(m[1]), `${s.name}: Node ${m[1]} is one package.json engines supports`);
    // Node 22/24 load @btc-vision/uwebsockets.js, built against glibc 2.38: trixie (2.41), not bookworm (2.36).
    if (m[1] !== '20') assert.equal(m[2], 'trixie', `${s.name}: the uWS build for Node ${m[1]} needs glibc >= 2.38 (trixie)`);
  }
  assert.equal(new Set(stages.map((s) => s.from)).size, 1, 'every stage on the same image (node_modules built where they run)');
  const build = stages.find((s) => s.name === 'build')!;
  const runs = instr(build, 'RUN').map((i) => i.args);
  assert.ok(runs.some((r) => /^npm ci\b/.test(r)) && runs.some((r) => r === 'npm run build'), 'build stage: npm ci, npm run build');
  const runtime = stages.at(-1)!;
  assert.deepEqual(instr(runtime, 'USER').map((i) => i.args), ['node']);
  assert.deepEqual(instr(runtime, 'EXPOSE').map((i) => i.args), ['6001']);
  assert.deepEqual(JSON.parse(instr(runtime, 'CMD')[0].args), ['node', 'dist/src/cli.js']);
  assert.equal(instr(runtime, 'RUN').length, 0, 'the runtime stage only copies');
  for (const cp of instr(runtime, 'COPY').map((i) => dockerCopy(i.args))) {
    if (!cp.from) continue;
    const from = stages.find((s) => s.name === cp.from)!;
    assert.ok(from, `COPY --from=${cp.from} names a stage`);
    if (cp.dest.includes('node_modules')) assert.ok(instr(from, 'RUN').some((r) => /npm ci\b.*--omit=dev/.test(r.args)), 'node_modules hold production deps only');
  }
  assert.match(instr(runtime, 'HEALTHCHECK')[0].args, /fetch\(.*\/health/);
  // The package's own start script runs the same file.
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  assert.equal(pkg.scripts.start, 'node dist/src/cli.js');
});

/** Bytes of the files under `dir` (symlinks not followed). */
function duBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? duBytes(p) : lstatSync(p).size;
  }
  return n;
}

test('Dockerfile reproduced without Docker: its build stage compiles, its runtime files with production deps and one uWS binary serve as Soketi users run it (SOKETI_PORT, a path prefix), the HEALTHCHECK passes, SIGTERM exits 0', async (t) => {
  const stages = dockerStages();
  const ignored = dockerIgnore(readFileSync(`${dockerfilePath}.dockerignore`, 'utf8'));
  const root = mkdtempSync(join(tmpdir(), 'ripple-image-'));
  temps.push(root);
  const stageDirs = new Map<string, string>();
  /** An image path of a stage (WORKDIR /app) mapped into the stage's temp dir. */
  const at = (stageDir: string, p: string) => join(stageDir, p.startsWith('/app') ? p.slice('/app'.length) : p);

  for (const s of stages) {
    const dir = join(root, s.name ?? 'final');
    mkdirSync(dir, { recursive: true });
    stageDirs.set(s.name ?? 'final', dir);
    assert.equal(instr(s, 'WORKDIR')[0]?.args, '/app');
    for (const i of s.instructions) {
      if (i.cmd === 'COPY') {
        const cp = dockerCopy(i.args);
        const dest = cp.dest.startsWith('/') ? at(dir, cp.dest) : join(dir, cp.dest);
        if (!cp.from) {
          for (const src of cp.sources) {
            const target = cp.sources.length > 1 || cp.dest.endsWith('/') ? join(dest, basename(src)) : dest;
            copyFromContext(repoRoot, src, target, ignored);
          }
        } else {
          const fromDir = stageDirs.get(cp.from)!;
          for (const src of cp.sources) {
            const from = at(fromDir, src);
            if (basename(src) === 'node_modules' && !existsSync(from)) throw new Error(`stage ${cp.from} has no ${src}`);
            // as Docker: into the folder when the destination ends with / or there are several sources
            const target = cp.sources.length > 1 || cp.dest.endsWith('/') ? join(dest, basename(src)) : dest;
            mkdirSync(dirname(target), { recursive: true });
            cpSync(from, target, { recursive: true, verbatimSymlinks: true });
            assert.ok(existsSync(target), `COPY --from=${cp.from} ${src} ${cp.dest}`);
          }
        }
      } else if (i.cmd === 'RUN') {
        // npm ci is stood in for by the installed node_modules (full, or production-only for --omit=dev);
        // `npm run build` runs for real.
        for (const step of i.args.split('&&').map((x) => x.trim())) {
          if (/^npm ci\b/.test(step)) {
            if (step.includes('--omit=dev')) copyProductionModules(join(dir, 'node_modules'));
            else symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'), 'dir');
          } else if (step === 'npm run build') {
            const r = spawnSync('npm', ['run', 'build'], { cwd: dir, encoding: 'utf8' });
            assert.equal(r.status, 0, `npm run build in the build stage:\n${r.stdout}\n${r.stderr}`);
          } else if (/^node scripts\/[\w-]+\.mjs$/.test(step)) {
            const r = spawnSync(process.execPath, [step.slice('node '.length)], { cwd: dir, encoding: 'utf8' });
            assert.equal(r.status, 0, `${step} in stage ${s.name}:\n${r.stdout}\n${r.stderr}`);
          } else if (!/^npm cache clean\b/.test(step)) {
            assert.fail(`unknown RUN step to reproduce: ${step}`);
          }
        }
      }
    }
  }

  const runtime = stages.at(-1)!;
  const dir = stageDirs.get(runtime.name ?? 'final')!;
  assert.ok(existsSync(join(dir, 'node_modules', 'fastify')), 'production deps present');
  assert.ok(!existsSync(join(dir, 'node_modules', 'typescript')) && !existsSync(join(dir, 'node_modules', 'tsx')), 'no dev deps');
  // One uWS binary: the one this Node loads.
  const binaries = filesUnder(join(dir, 'node_modules'), ['.node']).filter((f) => /\/uws_[^/]*\.node$/.test(f));
  assert.equal(binaries.length, 1, `one uWS binary: ${binaries.join(', ')}`);
  assert.match(binaries[0], new RegExp(`uws_${process.platform}_${process.arch}_${process.versions.modules}\\.node$`));
  t.diagnostic(`the image's /app: ${(duBytes(dir) / 1024 / 1024).toFixed(1)} MB (node_modules ${(duBytes(join(dir, 'node_modules')) / 1024 / 1024).toFixed(1)} MB)`);
  // Nothing above the runtime dir may lend it modules.
  for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) assert.ok(!existsSync(join(d, 'node_modules')), `${d}/node_modules would leak in`);

  const port = await freePort();
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir };
  for (const i of instr(runtime, 'ENV')) Object.assign(env, dockerEnv(i.args));
  // As a Soketi user runs the image: nothing in it overrides SOKETI_PORT/SOKETI_HOST, and the
  // HEALTHCHECK finds the port (and the path prefix) they set.
  Object.assign(env, { SOKETI_PORT: String(port), SOKETI_HOST: '127.0.0.1', SOKETI_PATH_PREFIX: '/ws', LOG_LEVEL: 'warn' });
  const healthcheck = (): Promise<number> => {
    const [bin, ...args] = JSON.parse(/CMD\s+(\[.*\])\s*$/.exec(instr(runtime, 'HEALTHCHECK')[0].args)![1]) as string[];
    return new Promise((res) => {
      const p = spawn(bin === 'node' ? process.execPath : bin, args, { cwd: dir, env, stdio: 'ignore' });
      p.on('exit', (code) => res(code ?? -1));
    });
  };
  assert.equal(await healthcheck(), 1, 'HEALTHCHECK fails while nothing listens');

  const [bin, ...args] = JSON.parse(instr(runtime, 'CMD')[0].args) as string[];
  const child = spawn(bin === 'node' ? process.execPath : bin, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  try {
    await eventually(
      async () => {
        if ((await healthcheck()) === 0) return true;
        assert.ok(child.exitCode === null, `the image's CMD exited:\n${out}`);
        return false;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: () => `HEALTHCHECK never passed:\n${out}` },
    );
    for (const p of ['/ready', '/metrics']) assert.equal((await fetch(`http://127.0.0.1:${port}/ws${p}`)).status, 200, p);
    const plugin = `/ws/ripple-recovery/${(JSON.parse(readFileSync(join(repoRoot, 'recovery-plugin', 'package.json'), 'utf8')) as { version: string }).version}/ripple-recovery.min.js`;
    assert.equal((await fetch(`http://127.0.0.1:${port}${plugin}`)).status, 200, 'the image serves the recovery plugin');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, `SIGTERM drains and exits 0:\n${out}`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  writeFileSync(join(root, 'node-output.txt'), out);
});

test("every locked package's engines admit every Node that package.json's engines admit: a clean install prints no EBADENGINE on a supported Node", () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } };
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; engines?: unknown }> };
  const ours = pkg.engines.node;
  const narrower: string[] = [];
  for (const [path, p] of Object.entries(lock.packages)) {
    const theirs = p.engines && typeof p.engines === 'object' && !Array.isArray(p.engines) ? (p.engines as { node?: string }).node : undefined;
    if (path && theirs && !semver.subset(ours, theirs)) narrower.push(`${path.replace(/^.*node_modules\//, '')}@${p.version} wants node ${theirs}`);
  }
  assert.deepEqual(narrower, [], `package.json engines "${ours}"`);
  // The README's supported lines are the engines' lines.
  for (const line of ['20', '22', '24']) assert.ok(semver.intersects(ours, `${line}.x`), `Node ${line} is supported`);
});

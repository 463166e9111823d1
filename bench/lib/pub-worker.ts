// Publisher process of the load generator: triggers events through the REST API
// (POST /apps/<id>/events, signed per spec §9.2) over keep-alive HTTP connections, at a fixed rate
// (open loop: the schedule does not wait for responses, up to `inflight` concurrent requests) or, with
// rate 0, as fast as `inflight` concurrent requests allow.
import { RawHttpPool } from './rawhttp.js';
import { signedQuery } from './sign.js';
import { nowMs } from './clock.js';
import { Histogram } from './hist.js';
import { MARK, EVENT_NAME, type ToPub, type FromPub, type PublishJob } from './protocol.js';

const send = (m: FromPub) => process.send!(m);

async function run(job: PublishJob): Promise<void> {
  const creds = { id: job.appId, key: job.key, secret: job.secret };
  const url = new URL(job.baseUrl);
  const path = `/apps/${job.appId}/events`;
  const padding = 'x'.repeat(Math.max(0, job.payloadBytes));
  const reqLatency = new Histogram();
  let attempted = 0;
  let ok = 0;
  let okWarm = 0;
  let okMeasured = 0;
  let failed = 0;
  let inflight = 0;
  let lastSend = 0;
  let lastResp = 0;
  let maxLag = 0;
  const errors: string[] = [];
  const noteError = (e: string) => {
    failed++;
    if (errors.length < 5) errors.push(e);
  };

  const pool = new RawHttpPool(url.hostname, Number(url.port), job.inflight);
  await pool.open();

  const trigger = (seq: number): Promise<void> => {
    const conn = pool.acquire();
    if (!conn) {
      noteError('no idle connection');
      return Promise.resolve();
    }
    const t = nowMs();
    const data = `${MARK}${t.toFixed(3)}|${seq}|${padding}`;
    const body = JSON.stringify({ name: EVENT_NAME, channels: [job.channel], data });
    const qs = signedQuery(creds, 'POST', path, body);
    attempted++;
    inflight++;
    lastSend = t;
    return conn.request('POST', `${path}?${qs}`, body).then(
      (res) => {
        inflight--;
        const at = nowMs();
        lastResp = at;
        // Soketi answers some errors with status 200 and a JSON {"error":...} body (spec §9.4).
        if (res.status === 200 && !res.body.includes('"error"')) {
          ok++;
          if (seq < 0) okWarm++;
          else {
            okMeasured++;
            reqLatency.recordMs(at - t);
          }
        } else noteError(`HTTP ${res.status} ${res.body.slice(0, 200)}`);
      },
      (err: Error) => {
        inflight--;
        lastResp = nowMs();
        noteError(String(err.message ?? err));
      },
    );
  };

  const t0 = nowMs();
  const measureStart = t0 + job.warmupMs;
  const end = measureStart + job.durationMs;
  let markedCpu: NodeJS.CpuUsage | null = null;
  let seqWarm = -1;
  let seqMeasured = 0;
  const nextSeq = (at: number) => (at < measureStart ? seqWarm-- : seqMeasured++);
  const checkMark = (at: number) => {
    if (!markedCpu && at >= measureStart) {
      markedCpu = process.cpuUsage();
      send({ type: 'measuring', atMs: at });
    }
  };

  if (job.rate > 0) {
    const interval = 1000 / job.rate;
    let i = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = nowMs();
        checkMark(now);
        if (now >= end) return resolve();
        // every event whose slot has come, as long as the in-flight cap allows
        while (t0 + i * interval <= now && inflight < job.inflight) {
          const slot = t0 + i * interval;
          if (now - slot > maxLag) maxLag = now - slot;
          i++;
          void trigger(nextSeq(slot));
        }
        const wait = t0 + i * interval - nowMs();
        // timers have 1 ms granularity; a late slot is caught up on the next tick (the send time
        // inside the event is taken when the request is actually made)
        setTimeout(tick, Math.max(0, Math.floor(wait)));
      };
      tick();
    });
  } else {
    await new Promise<void>((resolve) => {
      let lanes = job.inflight;
      const lane = async () => {
        for (;;) {
          const now = nowMs();
          checkMark(now);
          if (now >= end) break;
          await trigger(nextSeq(now));
        }
        if (--lanes === 0) resolve();
      };
      for (let k = 0; k < job.inflight; k++) void lane();
    });
  }
  // wait for the last responses
  const deadline = nowMs() + 15_000;
  while (inflight > 0 && nowMs() < deadline) await new Promise((r) => setTimeout(r, 5));
  const cpu = process.cpuUsage(markedCpu ?? undefined);
  pool.close();
  send({
    type: 'done',
    attempted,
    ok,
    okWarm,
    okMeasured,
    failed: failed + inflight,
    errors: inflight ? [...errors, `${inflight} requests unanswered`] : errors,
    measureStartMs: measureStart,
    endMs: lastResp,
    lastSendMs: lastSend,
    maxLagMs: maxLag,
    reqLatency: reqLatency.toSparse(),
    cpuMs: (cpu.user + cpu.system) / 1000,
  });
}

process.on('message', (m: ToPub) => {
  if (m.type === 'publish') run(m).catch((err) => send({ type: 'error', message: String(err?.stack ?? err) }));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });

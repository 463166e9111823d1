// Admission: the one step between a transport's handshake request and an open session, for every
// transport (style.md: centrifuge's OnConnecting). It looks the app up (a store may have to ask its
// database), applies the handshake rules, keeps the open-file reserve free, and counts the connection
// against the app's cluster-wide quota; the answer is "open with this app" or a refusal with its
// Pusher code. Every refused connection is counted and logged here, whatever the transport.
//
// The step answers at once when nothing needs waiting for (a cached app without a quota), so the
// common handshake costs no promise; a transport that gets a promise must watch for its client going
// away meanwhile (`gone`) and give back an admitted place it can no longer use (Sessions.abandon).
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { AppStore, Found } from '../apps/store.js';
import { diagnoseHandshake } from '../console/doctor.js';
import type { ConsoleTap } from '../console/tap.js';
import type { ConnectionCensus } from '../limits/connection-census.js';
import type { Metrics } from '../metrics/metrics.js';
import { checkHandshake, lookupFailed, overCapacity, overQuota, type HandshakeRefusal, type HandshakeRequest } from './handshake.js';

export type Admitted = { ok: true; app: App };
export type AdmissionOutcome = Admitted | HandshakeRefusal;

/** Whether the node has room for one more connection; counts it as taken when it answers true. */
export type CapacityCheck = () => boolean;

export interface AdmissionDeps {
  apps: AppStore;
  census: ConnectionCensus;
  /** Absent where the process's descriptors cannot be counted (no /proc), and in unit tests. */
  capacity?: CapacityCheck;
  metrics: Pick<Metrics, 'connectionsRefused'>;
  log: Logger;
  /** the debug console (issue 21): each refusal with the doctor's explanation, while watched */
  tap: ConsoleTap;
}

/**
 * A client that just dropped a connection on one node and opens one on another at once can be
 * counted before the first node has seen the drop and freed the place (a few milliseconds). So a
 * refusal is confirmed on these later counts before the client is told 4004.
 */
const QUOTA_RECHECKS_MS = [50, 100, 200];

export class Admission {
  private draining = false;

  constructor(private readonly d: AdmissionDeps) {}

  /** From now on every new connection is told to reconnect (to another node). */
  drain(): void {
    this.draining = true;
  }

  /** `gone`: the client went away while the step waited (a refusal is then not reported). */
  admit(req: HandshakeRequest, gone: () => boolean): AdmissionOutcome | Promise<AdmissionOutcome> {
    let found;
    try {
      found = this.d.apps.findByKey(req.key);
    } catch (err) {
      return this.storeFailed(req, err);
    }
    if (found instanceof Promise) return found.then((app) => this.withApp(req, app, gone), (err) => this.storeFailed(req, err));
    return this.withApp(req, found, gone);
  }

  private withApp(req: HandshakeRequest, app: Found, gone: () => boolean): AdmissionOutcome | Promise<AdmissionOutcome> {
    const refusal = checkHandshake(req, app, this.draining);
    if (refusal) return this.refused(req, refusal);
    // Checked before the quota: a connection refused here takes no quota place.
    if (this.d.capacity && !this.d.capacity()) return this.refused(req, { ...overCapacity, app });
    if (app!.maxConnections < 0) return { ok: true, app: app! };
    return this.quota(req, app!, gone);
  }

  private async quota(req: HandshakeRequest, app: App, gone: () => boolean): Promise<AdmissionOutcome> {
    if (await this.d.census.admit(app)) return { ok: true, app };
    for (const ms of QUOTA_RECHECKS_MS) {
      await new Promise((r) => setTimeout(r, ms));
      if (gone()) return { ...overQuota, app };
      if (await this.d.census.admit(app)) return { ok: true, app };
    }
    return this.refused(req, { ...overQuota, app });
  }

  private storeFailed(req: HandshakeRequest, err: unknown): HandshakeRefusal {
    // At debug: a reconnect storm meets every lookup failing; the store logs its outage once, and each
    // refusal is counted (reason app_lookup_failed).
    this.d.log.debug({ err, key: req.key }, 'app lookup failed');
    return this.refused(req, lookupFailed);
  }

  /** Counted by app (app="" for an unknown key: keys are not labels) and reason, and logged. */
  private refused(req: HandshakeRequest, refusal: HandshakeRefusal): HandshakeRefusal {
    const app = refusal.app;
    this.d.metrics.connectionsRefused.inc({ app: app?.id ?? '', reason: refusal.reason });
    this.d.log.debug(
      { app: app?.id, key: app ? undefined : req.key, remoteAddress: req.remoteAddress, origin: req.origin || undefined, code: refusal.code, reason: refusal.reason },
      'connection refused',
    );
    const tap = this.d.tap;
    // A key no app has belongs to no app: only the operator's consoles see it (appId ''), with the keys that exist.
    if (tap.on && tap.watches(app?.id ?? '')) {
      tap.emit({
        type: 'connection_refused',
        appId: app?.id ?? '',
        detail: { code: refusal.code, reason: refusal.reason, message: refusal.message, key: req.key, origin: req.origin || undefined, protocol: req.protocol || undefined, remoteAddress: req.remoteAddress },
        doctor: diagnoseHandshake(refusal.reason, req, app?.allowedOrigins, app ? undefined : tap.peers().map((p) => p.key)),
      });
    }
    return refusal;
  }
}

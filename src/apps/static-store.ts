// Apps from the config file and the environment, frozen at start. Lookups answer at once.
import type { AppConfig } from '../config/schema.js';
import { toApp, type App } from './app.js';
import type { AppChange, AppChangeListener, AppStore } from './store.js';

export class StaticAppStore implements AppStore {
  private byKey = new Map<string, App>();
  private byId = new Map<string, App>();
  private readonly listeners: AppChangeListener[] = [];

  constructor(apps: readonly AppConfig[]) {
    for (const cfg of apps) this.put(toApp(cfg));
  }

  findByKey(key: string): App | undefined {
    return this.byKey.get(key);
  }

  findById(id: string): App | undefined {
    return this.byId.get(id);
  }

  all(): App[] {
    return [...this.byId.values()];
  }

  onChange(listener: AppChangeListener): void {
    this.listeners.push(listener);
  }

  /**
   * Replaces the app list at run time and tells the listeners what changed. The file and environment
   * are read once, so only tests call this: it stands in for the database stores' change detection.
   */
  replace(apps: readonly AppConfig[]): void {
    const next = new Map(apps.map((cfg) => [cfg.id, toApp(cfg)]));
    const changes: AppChange[] = [];
    for (const previous of this.byId.values()) {
      if (!next.has(previous.id)) changes.push({ kind: 'removed', previous });
    }
    for (const app of next.values()) {
      const previous = this.byId.get(app.id);
      if (!previous) changes.push({ kind: 'added', app });
      else if (!app.enabled && previous.enabled) changes.push({ kind: 'disabled', app, previous });
      else if (JSON.stringify(app) !== JSON.stringify(previous)) changes.push({ kind: 'updated', app, previous });
    }
    this.byKey = new Map();
    this.byId = new Map();
    for (const app of next.values()) this.put(app);
    for (const change of changes) for (const l of this.listeners) l(change);
  }

  private put(app: App): void {
    this.byKey.set(app.key, app);
    this.byId.set(app.id, app);
  }
}

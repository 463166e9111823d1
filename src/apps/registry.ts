import type { AppConfig } from '../config/schema.js';
import { toApp, type App } from './app.js';

/** key/id → app; looked up once per connection or request, then passed along. */
export class AppRegistry {
  private byKey = new Map<string, App>();
  private byId = new Map<string, App>();

  constructor(apps: readonly AppConfig[]) {
    for (const cfg of apps) {
      const app = toApp(cfg);
      this.byKey.set(app.key, app);
      this.byId.set(app.id, app);
    }
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
}

// Commands other than starting a node: `ripple <command> [its options]`. Each is a module of its own,
// loaded only when asked for, with its own options and help; it answers with the exit code.
export interface ToolCommand {
  /** One line for `ripple --help`. */
  summary: string;
  load(): Promise<{ run(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> }>;
}

export const toolCommands: Readonly<Record<string, ToolCommand>> = {
  apps: { summary: 'list, add, update, disable, delete apps and rotate secrets (through a running node)', load: () => import('./apps.js') },
  doctor: { summary: 'check a deployment from outside as pusher-js and a backend reach it (WebSocket, fallback, TLS, REST), with fixes', load: () => import('./doctor.js') },
  tail: { summary: 'stream an app\'s debug log (connections, messages, webhooks, the connection doctor) from a running node', load: () => import('./tail.js') },
};

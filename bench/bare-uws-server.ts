// The ceiling of the stack: a bare uWebSockets.js broadcast server speaking just enough of the Pusher
// protocol for the bench's load generator. No app lookup, no signature check, no validation, no
// limits: POST /apps/:id/events parses the body, builds each channel's frame once and app.publish()es it.
// Run: PORT=6001 node --import tsx bench/bare-uws-server.ts
import uWS from 'uWebSockets.js';

const port = Number(process.env.PORT ?? 6001);
const host = process.env.HOST ?? '127.0.0.1';

interface UserData {
  socketId: string;
}

let counter = 0;
const app = uWS.App();

const dec = new TextDecoder();

app.ws<UserData>('/app/:key', {
  compression: uWS.DISABLED,
  maxPayloadLength: 100 * 1024,
  idleTimeout: 120,
  // Same order of magnitude as the servers it is compared with (uWS's default is 64 KiB).
  maxBackpressure: 1024 * 1024,
  upgrade: (res, req, context) => {
    counter++;
    res.upgrade<UserData>(
      { socketId: `${process.pid}.${counter}` },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    const id = ws.getUserData().socketId;
    ws.send(`{"event":"pusher:connection_established","data":"{\\"socket_id\\":\\"${id}\\",\\"activity_timeout\\":120}"}`);
  },
  message: (ws, message) => {
    let frame: { event?: string; data?: { channel?: string } | string };
    try {
      frame = JSON.parse(dec.decode(message));
    } catch {
      return;
    }
    if (frame.event === 'pusher:subscribe') {
      const data = typeof frame.data === 'string' ? JSON.parse(frame.data) : frame.data;
      const channel = data?.channel;
      if (typeof channel !== 'string') return;
      ws.subscribe(channel);
      ws.send(JSON.stringify({ event: 'pusher_internal:subscription_succeeded', channel, data: '{}' }));
    } else if (frame.event === 'pusher:unsubscribe') {
      const data = typeof frame.data === 'string' ? JSON.parse(frame.data) : frame.data;
      if (typeof data?.channel === 'string') ws.unsubscribe(data.channel);
    } else if (frame.event === 'pusher:ping') {
      ws.send('{"event":"pusher:pong","data":"{}"}');
    }
  },
});

app.post('/apps/:id/events', (res) => {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  const chunks: Buffer[] = [];
  res.onData((chunk, isLast) => {
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast) return;
    if (aborted) return;
    let body: { name?: string; data?: string; channels?: string[]; channel?: string };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.cork(() => res.writeStatus('400 Bad Request').end('{"error":"bad json"}'));
      return;
    }
    const channels = body.channels ?? (body.channel ? [body.channel] : []);
    for (const channel of channels) {
      app.publish(channel, JSON.stringify({ event: body.name, channel, data: body.data }));
    }
    res.cork(() => res.writeHeader('content-type', 'application/json').end('{}'));
  });
});

app.get('/health', (res) => {
  res.cork(() => res.writeHeader('content-type', 'application/json').end('{"ok":true}'));
});

app.any('/*', (res) => {
  res.cork(() => res.writeStatus('404 Not Found').end());
});

app.listen(host, port, (token) => {
  if (!token) {
    process.stderr.write(`bare-uws-server: cannot listen on ${host}:${port}\n`);
    process.exit(1);
  }
  process.stdout.write(`bare-uws-server listening on ${host}:${port}\n`);
});

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

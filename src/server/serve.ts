import { serve } from '@hono/node-server';
import { createNodeService } from './service.ts';

// `npm start`: the service on Node, configured by environment variables (docs/service.md, "Configuration").
const log = (line: Record<string, unknown>) => console.log(JSON.stringify({ time: new Date().toISOString(), ...line }));
const service = createNodeService({
  env: process.env,
  log,
  events: {
    onDone: (id, verdict, status) => log({ level: 'info', msg: 'job done', id, verdict, status }),
    onRetry: (id, attempt, error, after) => log({ level: 'warn', msg: 'job retry', id, attempt, error, retryInSeconds: after }),
    onDead: (id, attempt, error) => log({ level: 'error', msg: 'job dead-lettered', id, attempt, error }),
  },
});
const recovered = service.runner.start();
const port = Number(process.env.PORT ?? 8787);
const server = serve({ fetch: service.app.fetch, port, hostname: process.env.HOST ?? '127.0.0.1' }, (info) =>
  log({ level: 'info', msg: 'listening', port: info.port, recoveredJobs: recovered }),
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // A scan cut short here is not lost: its job stays "running" in the state file and recover() requeues it.
    const jobs = service.state.counts();
    log({
      level: 'info',
      msg: 'stopping',
      signal,
      runningJobs: jobs.running ?? 0,
      pendingJobs: jobs.pending ?? 0,
    });
    server.close();
    service.close();
    process.exit(0);
  });
}

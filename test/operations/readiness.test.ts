/**
 * `/readyz`, the readiness probe, beside `/healthz`, the liveness probe: not ready until the start
 * is done and no provider is still loading; not ready while the database does not answer, with an
 * answer within the check's bound even when it never does; `/healthz` stays 200 throughout. (Redis
 * unreachable: `test/redis/event-log-resilience.test.ts`; usage rows not writable:
 * `test/storage/usage-recorder.test.ts`; the default model downloading:
 * `test/providers/model-download.test.ts`; shutting down: `test/operations/graceful-shutdown.test.ts`.)
 */
import { once } from 'node:events';
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createDatabaseCheck } from '../../src/operations/database-check.js';
import type { Provider } from '../../src/providers/provider.js';
import { scriptedProvider } from '../helpers/scripted-provider.js';
import { startApp, testAppDefaults, type StartedApp } from '../helpers/start-app.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { createPostgresDatabase } from '../helpers/test-databases.js';

/** A port no one listens on now (the app is told to listen there, so the test knows its URL before `start()` resolves). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** `[status, body]` of a GET of `url`. */
async function probe(url: string): Promise<[number, unknown]> {
  const response = await fetch(url);
  return [response.status, await response.json()];
}

describe('/readyz during the start', () => {
  let app: App | undefined;
  afterAll(async () => {
    await app?.stop();
  });

  it('says starting until start() is done and while a provider loads, then ok; /healthz is ok throughout', async () => {
    let startCalled!: () => void;
    const startBegun = new Promise<void>((resolve) => (startCalled = resolve));
    let finishStart!: () => void;
    let loading: string | undefined = 'warming up: 1 of 2 models';
    const provider: Provider = {
      ...scriptedProvider(1),
      start: () => {
        startCalled();
        return new Promise<void>((resolve) => (finishStart = resolve));
      },
      loading: () => loading,
    };
    const port = await freePort();
    app = await createApp(loadConfig({ ...testAppDefaults(), LOG_LEVEL: 'silent', PORT: String(port) }), { providers: [provider] });
    const url = `http://127.0.0.1:${port}`;
    const started = app.start();

    // Listening, the providers' start under way.
    await startBegun;
    expect(await probe(`${url}/readyz`)).toEqual([503, { status: 'starting', reason: 'scripted: warming up: 1 of 2 models' }]);
    expect(await probe(`${url}/healthz`)).toEqual([200, { status: 'ok' }]);

    finishStart();
    await started;
    expect(await probe(`${url}/readyz`)).toEqual([503, { status: 'starting', reason: 'scripted: warming up: 1 of 2 models' }]);

    loading = undefined;
    expect(await probe(`${url}/readyz`)).toEqual([200, { status: 'ok' }]);
    expect(await probe(`${url}/healthz`)).toEqual([200, { status: 'ok' }]);
  });
});

describe('/readyz with a database that stops answering', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let proxy: TcpProxy;
  let started: StartedApp;
  afterAll(async () => {
    // Cut first: the frozen ping holds a pooled connection, which closing the app would wait for.
    await proxy?.cut();
    await started?.stop();
    await database?.drop();
  });

  it('answers 503 within the check\'s bound (500 ms) while /healthz stays 200', async () => {
    database = await createPostgresDatabase();
    const url = new URL(database.url);
    proxy = new TcpProxy(url.hostname, Number(url.port || 5432));
    await proxy.listen();
    url.port = String(proxy.port);
    started = await startApp({ DATABASE_URL: url.href });
    expect(await probe(`${started.url}/readyz`)).toEqual([200, { status: 'ok' }]);

    // Bytes stop flowing on the open connections: a ping gets no answer, and no error either.
    proxy.freeze();
    // The last answer stands for up to a second; the next ping never answers.
    const notReady = [503, { status: 'degraded', reason: `database ${url.href} did not answer within 500 ms` }];
    await expect.poll(() => probe(`${started.url}/readyz`)).toEqual(notReady);
    // Later probes wait for that same ping, each at most the bound.
    const startedAt = performance.now();
    expect(await probe(`${started.url}/readyz`)).toEqual(notReady);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(490);
    expect(performance.now() - startedAt).toBeLessThan(2_000);
    expect(await probe(`${started.url}/healthz`)).toEqual([200, { status: 'ok' }]);
  });
});

describe('createDatabaseCheck', () => {
  /** A database whose pings the test answers: each ping is counted and settles when the test says. */
  function controlledDatabase() {
    const pings: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
    return {
      pings,
      database: {
        location: 'postgres://gateway:***@db:5432/gateway',
        ping: () => new Promise<void>((resolve, reject) => pings.push({ resolve, reject })),
      },
    };
  }

  it('runs one ping at a time, and its result answers later checks for reuseMs', async () => {
    const { pings, database } = controlledDatabase();
    const check = createDatabaseCheck(database, { timeoutMs: 60_000, reuseMs: 60_000 });
    const first = check();
    const second = check();
    expect(pings).toHaveLength(1);
    pings[0]!.resolve();
    expect(await Promise.all([first, second])).toEqual([undefined, undefined]);
    expect(await check()).toBeUndefined();
    expect(pings).toHaveLength(1);
  });

  it('pings again once the result is older than reuseMs, and names the innermost cause of a failure', async () => {
    const { pings, database } = controlledDatabase();
    const check = createDatabaseCheck(database, { timeoutMs: 60_000, reuseMs: 0 });
    const first = check();
    pings[0]!.resolve();
    expect(await first).toBeUndefined();
    const second = check();
    expect(pings).toHaveLength(2);
    pings[1]!.reject(new Error('Failed query: select 1\nparams: ', { cause: new Error('connect ECONNREFUSED 10.0.0.5:5432') }));
    expect(await second).toBe('database postgres://gateway:***@db:5432/gateway is unreachable (connect ECONNREFUSED 10.0.0.5:5432)');
  });

  it('answers within timeoutMs when the ping does not, and waits for that same ping next time', async () => {
    const { pings, database } = controlledDatabase();
    const check = createDatabaseCheck(database, { timeoutMs: 50, reuseMs: 60_000 });
    expect(await check()).toBe('database postgres://gateway:***@db:5432/gateway did not answer within 50 ms');
    expect(await check()).toBe('database postgres://gateway:***@db:5432/gateway did not answer within 50 ms');
    expect(pings).toHaveLength(1);
    // Its late answer is the latest result.
    pings[0]!.resolve();
    expect(await check()).toBeUndefined();
    expect(pings).toHaveLength(1);
  });
});

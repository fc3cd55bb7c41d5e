/**
 * CORS: by default no other origin may read the gateway's answers (no CORS headers at all, where
 * Yoga's default reflected any Origin with credentials); `CORS_ORIGINS` names the origins that may,
 * for GraphQL and REST alike, with preflights answered and no credentials; `*` allows any page.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const apps: StartedApp[] = [];

afterAll(async () => {
  await Promise.all(apps.map((app) => app.stop()));
});

async function start(settings: Record<string, string>): Promise<StartedApp> {
  const app = await startApp({ API_KEYS: 'page-key', ...settings });
  apps.push(app);
  return app;
}

const PAGE = 'https://app.example.com';

function graphqlFrom(app: StartedApp, origin: string): Promise<Response> {
  return fetch(app.graphqlUrl, {
    method: 'POST',
    headers: { origin, 'content-type': 'application/json', authorization: 'Bearer page-key' },
    body: JSON.stringify({ query: '{ models { id } }' }),
  });
}

function preflight(url: string, origin: string): Promise<Response> {
  return fetch(url, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
}

describe('CORS', () => {
  it('sends no CORS headers by default: only the same origin reads the answers', async () => {
    const app = await start({});
    const response = await graphqlFrom(app, 'https://evil.example');
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
    const answer = await preflight(`${app.url}/v1/chat/completions`, 'https://evil.example');
    expect(answer.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows the CORS_ORIGINS origins on GraphQL and REST, preflights included, without credentials; others get nothing', async () => {
    const app = await start({ CORS_ORIGINS: `${PAGE}, http://localhost:5173` });
    for (const url of [app.graphqlUrl, `${app.url}/v1/chat/completions`]) {
      const answer = await preflight(url, PAGE);
      expect(answer.status).toBe(204);
      expect(answer.headers.get('access-control-allow-origin')).toBe(PAGE);
      expect(answer.headers.get('access-control-allow-headers')).toBe('authorization, content-type');
      expect(answer.headers.get('access-control-allow-methods')).toContain('POST');
      expect(answer.headers.get('access-control-allow-credentials')).toBeNull();
    }
    const response = await graphqlFrom(app, PAGE);
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe(PAGE);
    expect(response.headers.get('access-control-expose-headers')).toBe('x-request-id,retry-after');
    const models = await fetch(`${app.url}/v1/models`, { headers: { origin: 'http://localhost:5173', authorization: 'Bearer page-key' } });
    expect(models.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');

    const other = await graphqlFrom(app, 'https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect((await preflight(app.graphqlUrl, 'https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows any origin with *, still without credentials', async () => {
    const app = await start({ CORS_ORIGINS: '*' });
    const response = await graphqlFrom(app, 'https://anywhere.example');
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
  });
});

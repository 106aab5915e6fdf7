// The dashboard page on the admin server: `/` leads to `/dashboard`, the page and its script and styles, and uPlot
// (from the npm registry, served by the agent: the page works with no internet access). Read once, at start.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AdminServer } from './admin-server.ts';

interface Asset {
  type: string;
  body: Buffer;
}

const here = (file: string): URL => new URL(`./dashboard/${file}`, import.meta.url);
const fromPackage = (specifier: string): string => createRequire(import.meta.url).resolve(specifier);

function assets(): Map<string, Asset> {
  return new Map([
    ['dashboard.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(here('dashboard.js')) }],
    ['dashboard.css', { type: 'text/css; charset=utf-8', body: readFileSync(here('dashboard.css')) }],
    ['uplot.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(fromPackage('uplot/dist/uPlot.iife.min.js')) }],
    ['uplot.css', { type: 'text/css; charset=utf-8', body: readFileSync(fromPackage('uplot/dist/uPlot.min.css')) }],
  ]);
}

export function addDashboardPage(app: AdminServer): void {
  const page = readFileSync(here('index.html'));
  const files = assets();
  app.get('/', async (_request, reply) => reply.redirect('/dashboard', 302));
  app.get('/dashboard', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get<{ Params: { name: string } }>('/dashboard/assets/:name', async (request, reply) => {
    const asset = files.get(request.params.name);
    if (asset === undefined) return reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
    return reply.type(asset.type).send(asset.body);
  });
}

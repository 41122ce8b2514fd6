import { build, stop } from 'esbuild';
import { hash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

const digest = (body: Buffer | string): string => hash('sha256', body, 'base64url').slice(0, 12);

/** The web app's source (TypeScript and JSX with Preact), bundled at start into the asset `app.js`. */
const APP_ENTRY = join('src', 'main.tsx');

let bundled: Promise<Buffer> | undefined;

/**
 * Bundles the web app in memory (esbuild: tens of milliseconds), once per process: `npm install &&
 * npm start` needs no build step, and the bundle can never be older than its sources.
 */
function bundleApp(webDir: string): Promise<Buffer> {
  bundled ??= (async () => {
    try {
      const result = await build({
        entryPoints: [join(webDir, APP_ENTRY)],
        bundle: true,
        write: false,
        format: 'esm',
        platform: 'browser',
        target: 'es2022',
        jsx: 'automatic',
        jsxImportSource: 'preact',
        minify: true,
        legalComments: 'none',
        logLevel: 'silent',
      });
      return Buffer.from(result.outputFiles[0]!.contents);
    } finally {
      // esbuild keeps a service process for more builds; there are none.
      await stop();
    }
  })();
  return bundled;
}

/**
 * The web UI's files, read once at start: `web/index.html`, `web/assets/*` and the bundled app
 * (`web/src/main.tsx` as `app.js`). Every asset is
 * published under a name that carries its content hash (`app.css` -> `app.Hk3x9q0Lm2Ab.css`), and
 * the page's references are rewritten to those names, so an asset can be cached forever
 * (`immutable`): new content is a new URL. The page itself is revalidated by its ETag.
 */
export class StaticAssets {
  private constructor(
    readonly page: Asset,
    private readonly byPublishedName: ReadonlyMap<string, Asset>,
  ) {}

  /** The bundled app's size, for the log: "112.3 KB, 38.0 KB gzipped" (null without an app). */
  get appSize(): string | null {
    const js = [...this.byPublishedName.entries()].find(([name]) => /^app\.[\w-]+\.js$/.test(name))?.[1].body;
    if (!js) return null;
    const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
    return `${kb(js.length)}, ${kb(gzipSync(js).length)} gzipped`;
  }

  asset(publishedName: string): Asset | undefined {
    return this.byPublishedName.get(publishedName);
  }

  static async load(webDir: string): Promise<StaticAssets> {
    const assetsDir = join(webDir, 'assets');
    const published = new Map<string, Asset>();
    let html = await readFile(join(webDir, 'index.html'), 'utf8');
    const files = new Map<string, Buffer>();
    for (const name of existsSync(assetsDir) ? (await readdir(assetsDir)).sort() : []) {
      files.set(name, await readFile(join(assetsDir, name)));
    }
    if (existsSync(join(webDir, APP_ENTRY))) files.set('app.js', await bundleApp(webDir));
    for (const [name, body] of files) {
      const ext = extname(name);
      const tag = digest(body);
      const publishedName = `${name.slice(0, name.length - ext.length)}.${tag}${ext}`;
      published.set(publishedName, {
        body,
        contentType: CONTENT_TYPES[ext] ?? 'application/octet-stream',
        etag: `"${tag}"`,
      });
      html = html.replaceAll(`/assets/${name}"`, `/assets/${publishedName}"`);
    }
    const page = { body: Buffer.from(html), contentType: CONTENT_TYPES['.html']!, etag: `"${digest(html)}"` };
    return new StaticAssets(page, published);
  }
}

/**
 * The project's `web/` folder: the first one with an index.html found walking up from this
 * module, which works from `src/web/` (tsx) and from the bundled server under node_modules/.cache.
 */
export function findWebDir(from = dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = from, up = 0; up < 6; up++, dir = dirname(dir)) {
    if (existsSync(join(dir, 'web', 'index.html'))) return join(dir, 'web');
  }
  return undefined;
}

import { Type } from 'typebox';
import type { App } from './app-type.ts';
import type { ServerContext } from './context.ts';
import { AppError } from './errors.ts';
import { responses } from './schemas.ts';

const Status = Type.Object({ status: Type.String(), server: Type.String() });

/** /healthz: the process answers. /readyz: it can reach its stores and is not draining. */
export function healthRoutes(app: App, ctx: ServerContext): void {
  const server = ctx.config.serverId;
  app.get('/healthz', { schema: { tags: ['ops'], response: { 200: Status } } }, async () => ({ status: 'ok', server }));

  app.get('/readyz', { schema: { tags: ['ops'], response: responses({ 200: Status }, [503]) } }, async () => {
    if (ctx.lifecycle.draining) throw new AppError('shutting_down', `${server} is draining; use another server.`);
    try {
      await Promise.all([ctx.db.query('SELECT 1'), ctx.state.ping()]);
    } catch (error) {
      throw new AppError('unavailable', `${server} cannot reach its stores: ${(error as Error).message}`);
    }
    return { status: 'ready', server };
  });
}

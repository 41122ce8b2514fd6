import { tokenModule } from '../accounts/tokens/module.ts';
import { bankModule } from '../bank/module.ts';
import { shopModule } from '../shop/module.ts';
import { webModule } from '../web/module.ts';
import type { App } from './app-type.ts';
import type { ServerContext } from './context.ts';

/** A domain (tokens, shop, bank, chat, the web UI) adds its routes and hooks to the app server. */
export type DomainModule = (app: App, ctx: ServerContext) => void | Promise<void>;

/** Every domain mounted on the app server, in order. */
export const domainModules: DomainModule[] = [tokenModule, bankModule, shopModule, webModule];

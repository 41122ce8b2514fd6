/** `npm run deploy -- haproxy|nginx --servers ...`: prints a balancer config (see deploy-config.ts). */
import { DEPLOY_USAGE, deployConfig, UsageError } from './deploy-config.ts';

try {
  process.stdout.write(deployConfig(process.argv.slice(2)));
} catch (error) {
  if (!(error instanceof UsageError) && !(error instanceof TypeError)) throw error;
  process.stderr.write(`${error.message}\n\n${DEPLOY_USAGE}\n`);
  process.exit(2);
}

/** The embedded balancer alone in its own process, in front of SW_UPSTREAMS (id=url,...). */
import { createBalancer } from '../../src/balancer/balancer.ts';

const upstreams = (process.env.SW_UPSTREAMS ?? '').split(',').map((pair) => {
  const [id, url] = pair.split('=') as [string, string];
  return { id, url };
});
const balancer = await createBalancer({ port: 0, policy: 'round-robin', logger: false });
balancer.setUpstreams(upstreams);
process.send?.({ type: 'listening', port: Number(new URL(balancer.url).port) });
// A clean exit on Ctrl-C, so `--cpu-prof` writes its profile (bench/profile.ts).
process.on('SIGINT', () => void balancer.close().then(() => process.exit(0)));

import type { Experiment } from '../experiment.ts';
import { atm } from './atm.ts';
import { chat } from './chat.ts';
import { cost } from './cost.ts';
import { crash } from './crash.ts';
import { deploys } from './deploys.ts';
import { memory } from './memory.ts';
import { scale } from './scale.ts';
import { stickiness } from './stickiness.ts';

/** Every experiment of the lab, in the order a full run takes them (and the report shows them). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each has its own result type
export const EXPERIMENTS: ReadonlyArray<Experiment<any>> = [crash, cost, scale, chat, atm, memory, deploys, stickiness];

export const EXPERIMENT_NAMES: readonly string[] = EXPERIMENTS.map((e) => e.name);

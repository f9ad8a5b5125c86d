import { STAGES, type Stage } from '../db/models.ts';
import { InvalidInput } from '../errors.ts';

/** Where a promotion goes: development to staging, staging to production. */
export const DOWNSTREAM: Partial<Record<Stage, Stage>> = { development: 'staging', staging: 'production' };

/** The order apps are listed in, upstream first. */
export const STAGE_ORDER: Record<Stage, number> = { development: 0, review: 1, staging: 2, production: 3, test: 4 };

/** Short names people type for stages. */
const ALIASES: Record<string, Stage> = { prod: 'production', stg: 'staging', stage: 'staging', dev: 'development' };

/** Every word that names a stage: the stages and their aliases. */
export const STAGE_WORDS: ReadonlySet<string> = new Set([...STAGES, ...Object.keys(ALIASES)]);

/** Accepts the stage names and the aliases `prod`, `stg`, `dev`. */
export function parseStage(name: string): Stage {
  const stage = ALIASES[name] ?? name;
  if (!(STAGES as readonly string[]).includes(stage))
    throw new InvalidInput(`"${name}" is not a stage: use development, review, staging or production`);
  return stage as Stage;
}

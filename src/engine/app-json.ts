import { randomBytes } from 'node:crypto';
import { InvalidInput } from '../errors.ts';
import { CONFIG_KEY, MAX_CONFIG_BYTES, checkConfigValue, configSize, formatBytes } from './input.ts';

/** The parts of Heroku's app.json that flowops reads. */
export interface AppJson {
  env?: Record<string, string | { value?: string; generator?: string; required?: boolean }>;
  scripts?: { postdeploy?: string | { command: string }; 'pr-predestroy'?: string };
  environments?: { review?: { env?: AppJson['env'] } };
}

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A review app's config vars, as Heroku sets them: app.json `env` (a
 * `generator: secret` gets a random value), `environments.review.env` over it,
 * and HEROKU_APP_NAME, HEROKU_BRANCH, HEROKU_PR_NUMBER (with FLOW_* twins).
 * app.json comes from the repository, so it gets the same checks as
 * `config:set` (names, values, 32 KB); InvalidInput says what to fix in it.
 */
export function reviewConfig(appJson: AppJson, review: { app: string; branch: string; pr: number }): Record<string, string> {
  const config: Record<string, string> = {};
  const apply = (env: unknown, where: string) => {
    if (env === undefined) return;
    if (!isObject(env)) throw new InvalidInput(`app.json ${where} must be an object of config vars`);
    for (const [key, spec] of Object.entries(env)) {
      if (!CONFIG_KEY.test(key))
        throw new InvalidInput(
          `app.json ${where}: "${key.slice(0, 60)}" is not a valid config var name (letters, digits and "_", not starting with a digit)`,
        );
      let value: string;
      if (typeof spec === 'string' || typeof spec === 'number' || typeof spec === 'boolean') value = String(spec);
      else if (isObject(spec) && spec.generator === 'secret') value = randomBytes(32).toString('hex');
      else if (isObject(spec) && ['string', 'number', 'boolean'].includes(typeof spec.value)) value = String(spec.value);
      else if (isObject(spec) && spec.value === undefined) continue;
      else throw new InvalidInput(`app.json ${where}.${key} must be a string, or {"value": "..."}, or {"generator": "secret"}`);
      try {
        checkConfigValue(key, value);
      } catch (err) {
        throw err instanceof InvalidInput ? new InvalidInput(`app.json ${where}: ${err.message}`) : err;
      }
      config[key] = value;
    }
  };
  apply(appJson.env, 'env');
  const reviewEnvironment = isObject(appJson.environments) && isObject(appJson.environments.review) ? appJson.environments.review : {};
  apply(reviewEnvironment.env, 'environments.review.env');
  for (const prefix of ['HEROKU', 'FLOW']) {
    Object.assign(config, {
      [`${prefix}_APP_NAME`]: review.app,
      [`${prefix}_BRANCH`]: review.branch,
      [`${prefix}_PR_NUMBER`]: String(review.pr),
    });
  }
  const size = configSize(config);
  if (size > MAX_CONFIG_BYTES)
    throw new InvalidInput(
      `app.json's config vars come to ${formatBytes(size)}; an app's config vars are limited to 32 KB (${formatBytes(MAX_CONFIG_BYTES)})`,
    );
  return config;
}

/** app.json's text (null: none) as an object; InvalidInput when it is not one. */
export function parseAppJson(text: string | null): AppJson {
  if (text === null) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidInput('app.json is not valid JSON');
  }
  if (!isObject(value)) throw new InvalidInput('app.json must be a JSON object');
  return value as AppJson;
}

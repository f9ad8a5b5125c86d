import type { EmitterWebhookEvent } from '@octokit/webhooks';
import { z } from 'zod';
import { InvalidInput } from '../errors.ts';

// Postgres text cannot hold NUL, and every string read here is stored or shown somewhere.
const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => !s.includes('\0'), 'must not contain NUL characters');
const sha = z.string().regex(/^[0-9a-f]{40}(?:[0-9a-f]{24})?$/, 'must be a commit sha (40 hex digits)');
const fullName = z.string().regex(/^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/, 'must be owner/name');
// What git itself accepts as a ref name (git check-ref-format), so a ref flows on into git and URLs unchanged.
const refName = z
  .string()
  .max(255)
  .regex(/^[^\0-\x20\x7f~^:?*[\\]+$/, 'must be a git ref name')
  .refine(
    (r) =>
      !r.startsWith('-') &&
      !r.startsWith('/') &&
      !r.endsWith('/') &&
      !r.endsWith('.') &&
      !r.endsWith('.lock') &&
      !/\.\.|\/\/|@\{|\/\./.test(r),
    'must be a git ref name',
  );
const repository = z.object({ full_name: fullName });

const pushPayload = z.object({
  ref: refName.refine((r) => r.startsWith('refs/'), 'must start with refs/'),
  after: sha,
  deleted: z.boolean().optional(),
  pusher: z.object({ name: text(255) }).nullish(),
  head_commit: z.object({ message: text(65_536) }).nullish(),
  repository,
});

const pullRequestPayload = z.object({
  action: z.string().regex(/^[a-z_]{1,64}$/, 'must be an action name'),
  // The limit first: its message names the bound a pull request number has here (Postgres integer).
  number: z.number().max(2_147_483_647).int().min(1),
  repository,
  pull_request: z.object({
    title: text(1024),
    merged: z.boolean().nullish(),
    user: z.object({ login: text(255) }).nullish(),
    head: z.object({ ref: refName, sha, repo: repository.nullable() }),
  }),
});

// Events flowops only records: any JSON object; a repository, if named, named properly.
const otherPayload = z.object({ repository: repository.nullish() });

const SCHEMAS = new Map<string, z.ZodType>([
  ['push', pushPayload],
  ['pull_request', pullRequestPayload],
]);

/**
 * Parses a verified delivery's body into the event octokit's handlers take
 * (its name types its payload), or throws InvalidInput naming the first field
 * that is not what GitHub sends. GitHub signed it, but a signature proves who
 * sent it, not that it is well-formed: every field a handler reads is checked
 * here. Nothing is recorded for a delivery this refuses, so a redelivery can still work.
 */
export function parseDelivery(id: string, event: string, body: string): EmitterWebhookEvent {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new InvalidInput('the body is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new InvalidInput(`a ${event} delivery's body must be a JSON object`);
  check(event, SCHEMAS.get(event) ?? otherPayload, json);
  // The payload as GitHub sent it (the schemas check what flowops reads and let the rest through).
  return { id, name: event, payload: json } as EmitterWebhookEvent;
}

/** The repository a delivery is about (`owner/name`), when it names one. */
export function repositoryOf(event: EmitterWebhookEvent): string | null {
  const payload = event.payload as { repository?: { full_name: string } | null };
  return payload.repository?.full_name ?? null;
}

/** A push to a branch: what it acts on. Tags and deleted branches are not pushes flowops acts on. */
export function branchPushOf(
  event: EmitterWebhookEvent<'push'>,
): { branch: string; sha: string; pusher: string; subject: string | null } | null {
  const { ref, deleted, after, pusher, head_commit } = event.payload;
  if (!ref.startsWith('refs/heads/') || deleted) return null;
  // The pusher and head commit may be absent (zod allowed it), whatever the generated types say.
  const message = (head_commit as { message?: string } | null | undefined)?.message;
  return {
    branch: ref.slice('refs/heads/'.length),
    sha: after,
    pusher: (pusher as { name?: string } | null | undefined)?.name || 'someone',
    subject: message ? message.split('\n')[0]!.slice(0, 200) : null,
  };
}

function check<T>(event: string, schema: z.ZodType<T>, json: unknown): T {
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.join('.') || 'the body';
  throw new InvalidInput(`this is not a ${event} delivery as GitHub sends it: ${field}: ${issue.message}`);
}

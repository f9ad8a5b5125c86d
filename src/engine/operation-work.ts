import { z } from 'zod';

/**
 * What an operation does, as data: ids re-read from the database when it runs,
 * so any flowops process sharing the database can run it (the job queue holds
 * this as JSON). One kind per way an operation releases.
 */
export type OperationWork =
  /** Build `sha`, then release the slug to each app. */
  | { kind: 'deploy'; sha: string; appIds: number[] }
  /** Release a slug that exists (a promotion: the source app's, unchanged) to each app. */
  | { kind: 'promote'; appIds: number[]; slugId: string; commit: string | null; description: string }
  /** A new release of `appId` with an earlier release's slug and config. */
  | { kind: 'rollback'; appId: number; releaseId: number; again: boolean }
  /** A new release of `appId` with the slug it runs and its config vars as they are now. */
  | { kind: 'config'; appId: number; description: string };

/** A queued operation: which one, and its work. */
export interface OperationJob {
  operationId: number;
  work: OperationWork;
}

const id = z.number().int().positive();
const jobSchema: z.ZodType<OperationJob> = z.object({
  operationId: id,
  work: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('deploy'), sha: z.string().min(1), appIds: z.array(id).min(1) }),
    z.object({
      kind: z.literal('promote'),
      appIds: z.array(id).min(1),
      slugId: z.string().min(1),
      commit: z.string().nullable(),
      description: z.string(),
    }),
    z.object({ kind: z.literal('rollback'), appId: id, releaseId: id, again: z.boolean() }),
    z.object({ kind: z.literal('config'), appId: id, description: z.string() }),
  ]),
});

/** A job's payload as the queue gave it back, checked: a payload that is not one names no work to run. */
export function parseOperationJob(payload: unknown): OperationJob {
  const parsed = jobSchema.safeParse(payload);
  if (!parsed.success) throw new Error(`not an operation job: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
  return parsed.data;
}

/** The queue's name for an operation's job (one per operation). */
export const operationJobKey = (operationId: number) => `flowops_operation:${operationId}`;

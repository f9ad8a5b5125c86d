import type { EntityManager } from 'typeorm';
import type { FlowEvent } from '../db/entities.ts';

/*
 * The audit trail's records, made from the events the engine writes: which
 * event is a person's (or flowops') action on a pipeline, and which one settles
 * the outcome of an earlier record (an operation's end, a request's decision).
 * Written in the transaction of the change itself, by EngineContext.emit.
 */

/** How an action ended, as `audit` shows it. */
export type AuditOutcome =
  'done' | 'running' | 'failed' | 'refused' | 'pending approval' | 'approved' | 'rejected' | 'withdrawn' | 'expired';

/** A record to write: everything but its id and time. */
export interface NewAuditRecord {
  pipeline: string;
  actor: string;
  via: string;
  action: string;
  target: string;
  outcome: AuditOutcome;
  detail: string | null;
  /** `op:<id>` or `approval:<id>`: the subject whose end settles this record's outcome. */
  subject?: string | null;
}

/** What an event does to the trail: a new record, an outcome settled on an earlier one, or both. */
interface AuditChange {
  record?: NewAuditRecord;
  settle?: { subject: string; outcome: AuditOutcome; why?: string | null };
}

type EmittedEvent = Partial<FlowEvent> & Pick<FlowEvent, 'type' | 'via' | 'message'>;

/** The longest detail kept: a reason, a list of config keys, the first line of an error. */
const MAX_DETAIL = 300;

/** The first line of a text, cut to the detail's length. */
export function firstLine(text: string | null | undefined): string | null {
  if (!text) return null;
  const line = text.split('\n')[0]!.trim();
  return line.length > MAX_DETAIL ? `${line.slice(0, MAX_DETAIL - 1)}…` : line;
}

/** The command a config change was: `config:set` or `config:unset`. */
export function configAction(details: { config?: { unset?: boolean } } | undefined): string {
  return details?.config?.unset ? 'config:unset' : 'config:set';
}

const str = (value: unknown): string => (typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value));
const list = (value: unknown): string => (Array.isArray(value) ? value.map(str).join(', ') : str(value));

/** Operation kinds and the command each started as. */
const OPERATION_KINDS = new Set(['deploy', 'promote', 'rollback', 'config']);

/** Simple actions: event type → the command it records, and its target and detail from the event. */
const ACTIONS: Record<string, (e: EmittedEvent, d: Record<string, unknown>) => { action: string; target: string; detail?: string | null }> =
  {
    'access.added': (_e, d) => ({ action: 'access:add', target: str(d.user), detail: str(d.permission) }),
    'access.removed': (_e, d) => ({ action: 'access:remove', target: str(d.user) }),
    'access.default': (e, d) => ({ action: 'access:default', target: str(e.pipeline), detail: str(d.permission) || 'none' }),
    'lock.added': (_e, d) => ({
      action: d.extended ? 'lock:extend' : 'lock',
      target: str(d.target),
      detail: [d.until ? `until ${str(d.until).slice(0, 16).replace('T', ' ')} UTC` : '', str(d.reason)].filter(Boolean).join(': '),
    }),
    'lock.removed': (_e, d) => ({ action: 'unlock', target: str(d.target), detail: `locked by ${str(d.holder)}` }),
    'lock.expired': (_e, d) => ({ action: 'lock:expire', target: str(d.target), detail: `locked by ${str(d.holder)}` }),
    'lock.overridden': (_e, d) => ({
      action: 'lock:override',
      target: str(d.target),
      detail: `${str(d.holder)}'s lock, --force: ${str(d.reason)}`,
    }),
    'approval.bypassed': (_e, d) => ({ action: 'approvals:override', target: str(d.description), detail: `--force: ${str(d.reason)}` }),
    'approvals.required': (e, d) => ({
      action: 'approvals:require',
      target: `${str(e.pipeline)}:${str(d.stage)}`,
      detail: `${str(d.approvers)} approval${d.approvers === 1 ? '' : 's'}`,
    }),
    'approvals.disabled': (e, d) => ({ action: 'approvals:disable', target: `${str(e.pipeline)}:${str(d.stage)}` }),
    'subscription.added': (_e, d) => ({
      action: 'subscribe',
      target: str(d.channel),
      detail: [list(d.events), Array.isArray(d.optIns) && d.optIns.length ? `+ ${list(d.optIns)}` : ''].filter(Boolean).join(' '),
    }),
    'subscription.changed': (_e, d) => ({ action: 'unsubscribe', target: str(d.channel), detail: `only ${list(d.dropped)}` }),
    'subscription.removed': (_e, d) => ({ action: 'unsubscribe', target: str(d.channel) }),
    'pipeline.created': (e, d) => ({ action: 'pipelines:create', target: str(e.pipeline), detail: str(d.repo) }),
    'pipeline.connected': (e, d) => ({ action: 'pipelines:connect', target: str(e.pipeline), detail: str(d.repo) }),
    'pipeline.destroyed': (e) => ({ action: 'pipelines:destroy', target: str(e.pipeline) }),
    'app.created': (e, d) => ({ action: 'apps:create', target: str(e.app), detail: str(d.stage) }),
    'app.moved': (e, d) => ({ action: 'apps:move', target: str(e.app), detail: `${str(d.from)} → ${str(d.to)}` }),
    'app.destroyed': (e) => ({ action: 'apps:destroy', target: str(e.app) }),
    'ci.enabled': (e) => ({ action: 'ci:enable', target: str(e.pipeline) }),
    'ci.disabled': (e) => ({ action: 'ci:disable', target: str(e.pipeline) }),
    'autodeploy.changed': (e, d) => {
      const setting = d.autodeploy as { branch?: string; stage?: string; waitForCi?: boolean } | null | undefined;
      return setting
        ? {
            action: 'autodeploy:enable',
            target: str(e.pipeline),
            detail: `${str(setting.branch)} → ${str(setting.stage)}${setting.waitForCi ? ', waits for CI' : ''}`,
          }
        : { action: 'autodeploy:disable', target: str(e.pipeline) };
    },
    'reviewapps.changed': (e, d) => ({ action: d.reviewApps ? 'reviewapps:enable' : 'reviewapps:disable', target: str(e.pipeline) }),
    'formation.changed': (e, d) => ({
      action: 'ps:scale',
      target: str(e.app),
      detail: Object.entries((d.formation as Record<string, unknown> | undefined) ?? {})
        .map(([type, n]) => `${type}=${str(n)}`)
        .join(' '),
    }),
    'dyno.restarted': (e, d) => ({ action: 'ps:restart', target: [str(e.app), str(d.target)].filter(Boolean).join(' ') }),
    'dyno.stopped': (e, d) => ({ action: 'ps:stop', target: [str(e.app), str(d.target)].filter(Boolean).join(' ') }),
  };

/**
 * What `event` adds to the audit trail, if anything: events of no pipeline
 * (users, links) and progress (builds, releases, test runs) add nothing of
 * their own; an operation's end settles the record of its start.
 */
export function auditOf(event: EmittedEvent): AuditChange | null {
  if (!event.pipeline) return null;
  const d = event.data ?? {};
  const who = { pipeline: event.pipeline, actor: event.actor ?? 'flowops', via: event.via };
  const [head, tail] = event.type.split('.') as [string, string | undefined];

  if (OPERATION_KINDS.has(head) && event.operationId) {
    const subject = `op:${event.operationId}`;
    if (tail === 'started') {
      const action = head === 'config' ? configAction(d) : head;
      return { record: { ...who, action, target: list(d.apps), outcome: 'running', detail: firstLine(descriptionOf(event)), subject } };
    }
    if (tail === 'succeeded') return { settle: { subject, outcome: 'done' } };
    if (tail === 'failed') {
      const targets = (d.targets as { app: string; error?: string }[] | undefined) ?? [];
      const failed = targets.find((t) => t.error);
      return { settle: { subject, outcome: 'failed', why: failed ? `${failed.app}: ${failed.error}` : event.message } };
    }
    return null;
  }

  const request = typeof d.request === 'number' ? d.request : null;
  if (head === 'approval' && request !== null) {
    const subject = `approval:${request}`;
    const target = `request ${request}`;
    switch (tail) {
      case 'requested':
        return {
          record: {
            ...who,
            action: str(d.action),
            target: list(d.apps),
            outcome: 'pending approval',
            detail: firstLine(`${str(d.description) || event.message} (request ${request})`),
            subject,
          },
        };
      case 'approved': {
        const done = Number(d.count) >= Number(d.needed);
        return {
          record: { ...who, action: 'approve', target, outcome: 'done', detail: `${str(d.count)} of ${str(d.needed)}` },
          ...(done ? { settle: { subject, outcome: 'approved' as const } } : {}),
        };
      }
      case 'rejected':
      case 'withdrawn':
        return {
          record: {
            ...who,
            action: tail === 'rejected' ? 'reject' : 'withdraw',
            target,
            outcome: 'done',
            detail: firstLine(str(d.reason)),
          },
          settle: { subject, outcome: tail, why: str(d.reason) },
        };
      case 'expired':
        return {
          record: { ...who, action: 'request:expire', target, outcome: 'done', detail: null },
          settle: { subject, outcome: 'expired' },
        };
      case 'failed':
        return { settle: { subject, outcome: 'failed', why: str(d.reason) || event.message } };
      default:
        return null;
    }
  }

  const simple = ACTIONS[event.type];
  if (!simple) return null;
  const { action, target, detail } = simple(event, d);
  return { record: { ...who, action, target, outcome: 'done', detail: firstLine(detail) } };
}

/** An operation's description, from its started event's message (`alice: Deploy 0f0a53b to shop-staging`). */
function descriptionOf(event: EmittedEvent): string {
  const prefix = `${event.actor ?? ''}: `;
  return event.message.startsWith(prefix) ? event.message.slice(prefix.length) : event.message;
}

/** Writes a record (in `m`'s transaction, or alone). */
export async function insertAuditRecord(m: Pick<EntityManager, 'query'>, record: NewAuditRecord): Promise<void> {
  await m.query(
    `INSERT INTO audit_records (pipeline, actor, via, action, target, outcome, detail, subject) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [record.pipeline, record.actor, record.via, record.action, record.target, record.outcome, record.detail, record.subject ?? null],
  );
}

/** Separate refusal records one person gets on a pipeline per hour; any more are counted on one `(more)` record. */
export const REFUSAL_RECORDS_PER_HOUR = 10;
/** The action of the record that counts a person's refusals past REFUSAL_RECORDS_PER_HOUR. */
export const MORE_REFUSALS = '(more)';
/** The first key of the advisory lock that takes one person's refusals on a pipeline one at a time (the second: a hash of both). */
const REFUSALS_NAMESPACE = 0x4ef5;

/**
 * Records a refusal. The same refusal again within the hour (same person,
 * front, action, target and reason) counts on its record (`repeats`); past
 * REFUSAL_RECORDS_PER_HOUR records in the hour, any other refusal counts on one
 * `(more)` record, whichever front they come through: a person trying a
 * thing over and over, or a script trying everything at once, cannot flood
 * the trail, and every refusal is still counted. Run in its own transaction:
 * one person's refusals on a pipeline are taken one at a time.
 */
export async function recordRefusal(m: Pick<EntityManager, 'query'>, record: Omit<NewAuditRecord, 'outcome' | 'subject'>): Promise<void> {
  await m.query(`SELECT pg_advisory_xact_lock($1, hashtext($2 || ':' || $3))`, [REFUSALS_NAMESPACE, record.pipeline, record.actor]);
  const recent: { id: string; action: string; same: boolean }[] = await m.query(
    `SELECT id, action, (via = $3 AND action = $4 AND target = $5 AND detail IS NOT DISTINCT FROM $6) AS same
       FROM audit_records
      WHERE pipeline = $1 AND actor = $2 AND outcome = 'refused' AND created_at > now() - interval '1 hour'
      ORDER BY id DESC`,
    [record.pipeline, record.actor, record.via, record.action, record.target, record.detail],
  );
  const more = `more refusals within the hour, counted here: the last was ${record.action} ${record.target}`.trim();
  const onto =
    recent.find((r) => r.same) ??
    (recent.filter((r) => r.action !== MORE_REFUSALS).length >= REFUSAL_RECORDS_PER_HOUR
      ? (recent.find((r) => r.action === MORE_REFUSALS) ?? 'more')
      : undefined);
  if (onto === 'more')
    await insertAuditRecord(m, {
      ...record,
      action: MORE_REFUSALS,
      target: '',
      outcome: 'refused',
      detail: more,
    });
  else if (onto)
    await m.query(
      `UPDATE audit_records SET repeats = repeats + 1, last_at = clock_timestamp(),
              detail = CASE WHEN action = $2 THEN $3 ELSE detail END WHERE id = $1`,
      [onto.id, MORE_REFUSALS, more],
    );
  else await insertAuditRecord(m, { ...record, outcome: 'refused' });
}

/** Writes what `event` adds to the trail, in the transaction that writes the event. */
export async function recordAudit(m: EntityManager, event: EmittedEvent): Promise<void> {
  const change = auditOf(event);
  if (!change) return;
  if (change.record) await insertAuditRecord(m, change.record);
  if (change.settle) {
    const why = firstLine(change.settle.why);
    // Only an open outcome is settled: a record that ended stays as it ended.
    await m.query(
      `UPDATE audit_records SET outcome = $2, detail = CASE WHEN $3::text IS NULL THEN detail ELSE coalesce(detail || ' — ', '') || $3::text END
        WHERE subject = $1 AND outcome IN ('running', 'pending approval', 'approved')`,
      [change.settle.subject, change.settle.outcome, why],
    );
  }
}

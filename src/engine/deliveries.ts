import { short } from '../format.ts';
import type { EngineContext } from './context.ts';

/** Webhook deliveries from a source host, recorded once. */
export class Deliveries {
  constructor(
    private readonly ctx: EngineContext,
  ) {}

  /**
   * Records a webhook delivery from a source host once: false when this
   * delivery id was seen before (a redelivery), and then nothing changes.
   * A push is written as an event of each pipeline connected to the repository.
   */
  async receiveDelivery(delivery: { id: string; event: string; repository: string | null; push?: { branch: string; sha: string; pusher: string } }): Promise<boolean> {
    // One statement, so one round trip and atomic: the delivery is recorded and,
    // only if it is new, each connected pipeline gets its push event.
    const push = delivery.push;
    const rows: { first: boolean }[] = await this.ctx.db.query(
      `WITH delivery AS (
         INSERT INTO github_deliveries (id, event, repository) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING id
       ), pushed AS (
         INSERT INTO events (type, pipeline, actor, via, message, data)
         SELECT 'github.push', p.name, $4, 'github', $5, $6::jsonb
           FROM pipelines p
          WHERE $7 AND p.repo = 'github:' || $3 AND EXISTS (SELECT 1 FROM delivery)
         RETURNING id
       )
       SELECT EXISTS (SELECT 1 FROM delivery) AS first, (SELECT count(*) FROM pushed) AS events`,
      [
        delivery.id,
        delivery.event,
        delivery.repository,
        push?.pusher ?? null,
        push ? `${push.pusher} pushed ${short(push.sha)} to ${push.branch}` : '',
        JSON.stringify(push ? { branch: push.branch, sha: push.sha, delivery: delivery.id } : {}),
        !!push && !!delivery.repository,
      ],
    );
    this.ctx.notify();
    return rows[0]!.first;
  }
}

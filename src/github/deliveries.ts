import type { EmitterWebhookEvent } from '@octokit/webhooks';
import type { DataSource } from 'typeorm';
import { short } from '../format.ts';
import { formatSourceRef, githubRef } from '../source/source-ref.ts';
import { branchPushOf, repositoryOf } from './parse-delivery.ts';

/**
 * GitHub's deliveries, recorded once by their X-GitHub-Delivery id (GitHub
 * redelivers on a timeout, and anyone may redeliver from the hook's settings):
 * the `github_deliveries` table belongs to the GitHub front, as the replay
 * guard of Slack's requests belongs to the Slack edge.
 */
export class GitHubDeliveries {
  constructor(private readonly db: DataSource) {}

  /**
   * Records a verified, validated delivery: `first` is false when its id was
   * seen before (a redelivery), and then nothing changes. A branch push is also
   * written as a `github.push` event of each pipeline on the repository, with the
   * pipeline's auto-deploy setting at that moment (its message says what it led to).
   *
   * Those events are domain events written here rather than by the engine, on
   * purpose: in the delivery's own statement they are atomic with its record,
   * so a push is recorded exactly once even if the process stops right after
   * answering GitHub, and the answer costs one round trip to the database.
   * `events` says how many were written, so the caller can wake their consumers.
   */
  async recordOnce(event: EmitterWebhookEvent): Promise<{ first: boolean; events: number }> {
    const repository = repositoryOf(event);
    const push = event.name === 'push' && repository ? branchPushOf(event as EmitterWebhookEvent<'push'>) : null;
    const repo = repository ? githubRef(repository) : null;
    // $8 is cast: left untyped, the comparison with pipelines.repo costs PGlite a quarter more under a burst of deliveries (npm run bench).
    const rows: { first: boolean; events: string | number }[] = await this.db.query(
      `WITH delivery AS (
         INSERT INTO github_deliveries (id, event, repository) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING id
       ), pushed AS (
         INSERT INTO events (type, pipeline, actor, via, message, data)
         SELECT 'github.push', p.name, $4, 'github', $5, $6::jsonb || jsonb_build_object('autodeploy', p.autodeploy)
           FROM pipelines p
          WHERE $7 AND p.repo = $8::text AND EXISTS (SELECT 1 FROM delivery)
         RETURNING id
       )
       SELECT EXISTS (SELECT 1 FROM delivery) AS first, (SELECT count(*) FROM pushed) AS events`,
      [
        event.id,
        event.name,
        repository,
        push?.pusher ?? null,
        push ? `${push.pusher} pushed ${short(push.sha)} to ${push.branch}` : '',
        JSON.stringify(push ? { branch: push.branch, sha: push.sha, subject: push.subject, delivery: event.id } : {}),
        !!push && !!repo,
        repo ? formatSourceRef(repo) : null,
      ],
    );
    return { first: rows[0]!.first, events: Number(rows[0]!.events) };
  }
}

/** A parsed command: the same for `/flow` in Slack and the `flowops` CLI. */
export type Command =
  | { name: 'pipelines' }
  | { name: 'pipelines:create'; pipeline: string; repo: string; branch?: string }
  | { name: 'pipelines:info'; pipeline: string }
  | { name: 'pipelines:connect'; pipeline: string; repository: string }
  | { name: 'pipelines:destroy'; pipeline: string; confirm?: string }
  | { name: 'apps:create'; app: string; pipeline: string; stage: string; platform?: string; namespace?: string }
  | { name: 'apps:move'; app: string; stage: string }
  | { name: 'apps:destroy'; app: string; confirm?: string }
  | { name: 'deploy'; pipeline: string; ref?: string; stage: string; app?: string; force?: boolean; reason?: string }
  | {
      name: 'promote';
      /** Empty when the source app alone names it (Heroku's `pipelines:promote -a <app>`). */
      pipeline: string;
      fromStage?: string;
      fromApp?: string;
      toStage?: string;
      toApps?: string[];
      force?: boolean;
      reason?: string;
    }
  | { name: 'releases'; app: string }
  | { name: 'releases:output'; app: string; version?: number }
  | { name: 'rollback'; app: string; version?: number; force?: boolean; reason?: string }
  | { name: 'lock'; target: string; reason?: string; for?: string }
  | { name: 'unlock'; target: string }
  | { name: 'locks'; pipeline?: string }
  | { name: 'approvals:require'; pipeline: string; stage: string; approvers?: number }
  | { name: 'approvals:disable'; pipeline: string; stage: string }
  | { name: 'approvals'; pipeline?: string }
  | { name: 'approve'; id: number }
  | { name: 'reject'; id: number; reason?: string }
  | { name: 'config'; app: string }
  | { name: 'config:set'; app: string; vars: Record<string, string>; force?: boolean; reason?: string }
  | { name: 'config:unset'; app: string; keys: string[]; force?: boolean; reason?: string }
  | { name: 'diff'; pipeline: string; app?: string }
  | { name: 'logs'; app: string; num?: number; dyno?: string; source?: 'app' | 'flowops'; tail: boolean }
  | { name: 'ps'; app: string }
  | { name: 'ps:scale'; app: string; formation: Record<string, number> }
  | { name: 'ps:restart'; app: string; target?: string }
  | { name: 'ps:stop'; app: string; target: string }
  | { name: 'apps' }
  | { name: 'apps:info'; app: string }
  | { name: 'config:get'; app: string; key: string }
  | { name: 'open'; app: string }
  | { name: 'access'; pipeline: string }
  | { name: 'access:add'; pipeline: string; user: string; permission: string }
  | { name: 'access:remove'; pipeline: string; user: string }
  | { name: 'access:default'; pipeline: string; permission: string }
  | { name: 'users:create'; user: string }
  | { name: 'users' }
  | { name: 'users:unlink'; user: string }
  | { name: 'login'; code?: string }
  | { name: 'ci'; pipeline: string }
  | { name: 'ci:info'; pipeline: string; number: number }
  | { name: 'ci:rerun'; pipeline: string; number?: number }
  | { name: 'ci:cancel'; pipeline: string; number: number }
  | { name: 'ci:enable'; pipeline: string }
  | { name: 'ci:disable'; pipeline: string }
  | { name: 'autodeploy:enable'; pipeline: string; branch: string; stage?: string; waitForCi: boolean }
  | { name: 'autodeploy:disable'; pipeline: string }
  | { name: 'reviewapps'; pipeline: string }
  | { name: 'reviewapps:enable'; pipeline: string; autodeploy: boolean; autodestroy: boolean; staleDays?: number; waitForCi: boolean }
  | { name: 'reviewapps:disable'; pipeline: string }
  | { name: 'reviewapps:create'; pipeline: string; pr: number }
  | { name: 'reviewapps:destroy'; pipeline: string; pr: number }
  | { name: 'subscribe'; pipeline: string; events: string[]; channel?: string; optIns?: string[] }
  | { name: 'unsubscribe'; pipeline: string; channel?: string; optIns?: string[] }
  | { name: 'subscriptions'; channel?: string }
  | { name: 'audit'; pipeline: string; since?: string; user?: string }
  | { name: 'metrics'; pipeline: string; days?: number }
  | { name: 'help'; command?: string };

export type CommandName = Command['name'];

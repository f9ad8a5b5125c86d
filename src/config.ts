import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { isNamespace } from './platform/kubernetes/names.ts';

/** The settings of one flowops server, read from the environment. */
export interface Settings {
  port: number;
  databaseUrl: string | undefined;
  dataDir: string;
  adminToken: string | undefined;
  bootTimeoutMs: number;
  /** FLOW_BUILD_TIMEOUT: how long a build may take before it is stopped. */
  buildTimeoutMs: number;
  /** Deploy locks: how long one lasts without `--for`, and at most (FLOW_LOCK_DEFAULT, FLOW_LOCK_MAX). */
  locks: { defaultMs: number; maxMs: number };
  /** FLOW_APPROVAL_TTL: how long an approval request waits for its approvals. */
  approvalTtlMs: number;
  /** FLOW_AUDIT_RETENTION_DAYS: how many days audit records are kept. */
  auditRetentionDays: number;
  /** Nudges: how often flowops looks for them (FLOW_NUDGE_INTERVAL), and after how many days staging ahead of production is one (FLOW_NUDGE_STAGING_DAYS). */
  nudges: { intervalMs: number; stagingDays: number };
  /** FLOW_PLATFORM: where apps run; `local` (this machine) allows one flowops per database, `kubernetes` allows replicas. */
  platform: 'local' | 'kubernetes';
  /** FLOW_WORKER_CONCURRENCY: how many operations this process runs at once when it claims them from Postgres. */
  workerConcurrency: number;
  /** FLOW_SANDBOX: `auto` picks bubblewrap when `bwrap` is installed. */
  sandbox: 'auto' | 'bubblewrap' | 'none';
  /** The router in front of every app (FLOW_ROUTER_PORT, FLOW_ROUTER_HOST) and the domain apps answer at (FLOW_APPS_DOMAIN). */
  router: { port: number; host: string; domain: string; caddyAdmin: string | undefined };
  /** FLOW_LOG_LINES: how many lines of each app's log are kept. */
  logLines: number;
  /** Bytes of request bodies (GitHub, Slack) buffered before their signature is checked, across the process. */
  unverifiedBodyBytes: number;
  /** The Kubernetes platform, when a cluster is set up (KUBECONFIG, or flowops runs in a pod). */
  kubernetes: KubernetesSettings | null;
  /** FLOW_SLUG_STORE (with FLOW_S3_ENDPOINT, AWS_REGION): where slug archives live for every replica. */
  slugStore: SlugStoreSettings;
  slack: SlackSettings | null;
  github: {
    token: string | undefined;
    apiUrl: string;
    /** GitHub's web pages for GITHUB_API_URL (messages link commits and pull requests there). */
    webUrl: string;
    webhookSecret: string | undefined;
    app?: { appId: string; privateKey: string; installationId: string };
  };
}

/** Slack: HTTP mode (bot token + signing secret) or Socket Mode (bot token + app token). */
export interface SlackSettings {
  mode: 'http' | 'socket';
  botToken: string;
  signingSecret: string | undefined;
  appToken: string | undefined;
  apiUrl: string | undefined;
  /** Slack user ids that are flowops admins. */
  admins: string[];
}

/** Apps on Kubernetes (`apps:create --platform kubernetes`). */
export interface KubernetesSettings {
  /** KUBECONFIG: the kubeconfig file; undefined in a pod (its service account). */
  kubeconfig: string | undefined;
  /** FLOW_K8S_NAMESPACE: the namespace of an app created without `--namespace`. */
  namespace: string;
  /** FLOW_K8S_DOMAIN: apps get an Ingress at `<app>.<domain>` when set. */
  domain: string | null;
  /** FLOW_K8S_STACK_IMAGE: the image slugs run on (Heroku's stack). */
  stackImage: string;
  /** FLOW_K8S_ROLLOUT_TIMEOUT: how long a release's rollout may take before it is failed and undone. */
  rolloutTimeoutMs: number;
  /** FLOW_K8S_JOB_TIMEOUT: how long a release phase or one-off command Job may run. */
  jobTimeoutMs: number;
  /** FLOW_PUBLIC_URL: where pods reach flowops (they fetch slugs from it). */
  publicUrl: string;
}
/** FLOW_SLUG_STORE, as read from the environment. */
export type SlugStoreSettings =
  | { kind: 'dir' }
  | {
      kind: 's3';
      bucket: string;
      /** Keys are `<prefix>/<sha256>.tgz`; '' puts them at the bucket's root. */
      prefix: string;
      /** FLOW_S3_ENDPOINT (MinIO, s3rver, another S3-compatible service): path-style addressing. Unset: AWS itself. */
      endpoint: string | undefined;
      region: string;
    };

export class SettingError extends Error {}

/** GitHub's web address for its API address: api.github.com is github.com; Enterprise's `https://host/api/v3` is `https://host`. */
export function githubWebUrl(apiUrl: string): string {
  if (/^https:\/\/api\.github\.com\/?$/.test(apiUrl)) return 'https://github.com';
  return apiUrl.replace(/\/api\/v3\/?$/, '').replace(/\/+$/, '');
}

const portSchema = z.coerce.number().int().min(0).max(65535);

/**
 * Reads settings; a missing or malformed one throws a SettingError whose message is
 * the one line start-up prints: the setting's name and what to set.
 */
export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const port = portSchema.safeParse(env.PORT ?? '3000');
  if (!port.success) {
    throw new SettingError(`PORT must be a port number (0-65535), got "${env.PORT}"; set PORT=3000 or leave it unset`);
  }
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new SettingError(
      `DATABASE_URL must be a postgres:// URL, got "${databaseUrl}"; set DATABASE_URL=postgres://user@host:5432/db or unset it to use the embedded database`,
    );
  }
  const adminToken = env.FLOW_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < 16) {
    throw new SettingError('FLOW_ADMIN_TOKEN must be at least 16 characters; set a long random value or unset it to have one generated');
  }
  const sandbox = env.FLOW_SANDBOX || 'auto';
  if (sandbox !== 'auto' && sandbox !== 'bubblewrap' && sandbox !== 'none') {
    throw new SettingError(
      `FLOW_SANDBOX must be auto, bubblewrap or none, got "${sandbox}"; leave it unset for auto (bubblewrap when installed)`,
    );
  }
  const platform = env.FLOW_PLATFORM || 'local';
  if (platform !== 'local' && platform !== 'kubernetes')
    throw new SettingError(
      `FLOW_PLATFORM must be local or kubernetes, got "${platform}"; leave it unset to run apps on this machine (local)`,
    );
  const kubernetes = readKubernetesSettings(env);
  if (platform === 'kubernetes' && !kubernetes)
    throw new SettingError(
      'FLOW_PLATFORM=kubernetes runs apps on a cluster, and none is set up: set KUBECONFIG to its kubeconfig file (or run flowops in a pod of the cluster)',
    );
  const workerConcurrency = z.coerce
    .number()
    .int()
    .min(1)
    .max(256)
    .safeParse(env.FLOW_WORKER_CONCURRENCY ?? '8');
  if (!workerConcurrency.success)
    throw new SettingError(
      `FLOW_WORKER_CONCURRENCY must be a whole number of operations from 1 to 256, got "${env.FLOW_WORKER_CONCURRENCY}"; set FLOW_WORKER_CONCURRENCY=8 or unset it`,
    );
  const unverified = z.coerce
    .number()
    .int()
    .min(25)
    .safeParse(env.FLOW_UNVERIFIED_BODIES_MB ?? '100');
  if (!unverified.success) {
    throw new SettingError(
      `FLOW_UNVERIFIED_BODIES_MB must be a whole number of megabytes, at least 25 (GitHub's largest delivery), got "${env.FLOW_UNVERIFIED_BODIES_MB}"; set FLOW_UNVERIFIED_BODIES_MB=100 or unset it`,
    );
  }
  const routerPort = portSchema.safeParse(env.FLOW_ROUTER_PORT ?? '5000');
  if (!routerPort.success)
    throw new SettingError(
      `FLOW_ROUTER_PORT must be a port number (0-65535), got "${env.FLOW_ROUTER_PORT}"; set FLOW_ROUTER_PORT=5000 or leave it unset`,
    );
  const domain = (env.FLOW_APPS_DOMAIN || 'localhost').toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(domain) || domain.length > 190)
    throw new SettingError(
      `FLOW_APPS_DOMAIN must be a domain name like apps.example.com, got "${env.FLOW_APPS_DOMAIN}"; leave it unset for localhost`,
    );
  const routerHost = env.FLOW_ROUTER_HOST || '127.0.0.1';
  if (!/^[0-9a-fA-F:.]+$/.test(routerHost))
    throw new SettingError(`FLOW_ROUTER_HOST must be an IP address to listen on (127.0.0.1, 0.0.0.0 or ::), got "${routerHost}"`);
  const kind = env.FLOW_ROUTER || 'builtin';
  if (kind !== 'builtin' && kind !== 'caddy')
    throw new SettingError(`FLOW_ROUTER must be builtin or caddy, got "${kind}"; leave it unset for flowops' own router`);
  const caddyAdmin = kind === 'caddy' ? (env.FLOW_CADDY_ADMIN || 'http://127.0.0.1:2019').replace(/\/+$/, '') : undefined;
  if (caddyAdmin !== undefined && !/^http:\/\/[^\s/]+$/.test(caddyAdmin))
    throw new SettingError(
      `FLOW_CADDY_ADMIN must be the http:// address of Caddy's admin API, like http://127.0.0.1:2019; got "${caddyAdmin}"`,
    );
  if (caddyAdmin !== undefined && routerPort.data === 0)
    throw new SettingError(
      'FLOW_ROUTER=caddy needs a port for Caddy to serve the apps on: set FLOW_ROUTER_PORT (443 for HTTPS with a real FLOW_APPS_DOMAIN)',
    );
  const logLines = z.coerce
    .number()
    .int()
    .min(100)
    .max(100_000)
    .safeParse(env.FLOW_LOG_LINES ?? '1500');
  if (!logLines.success)
    throw new SettingError(
      `FLOW_LOG_LINES must be a whole number of lines from 100 to 100000, got "${env.FLOW_LOG_LINES}"; set FLOW_LOG_LINES=1500 or unset it`,
    );
  const apiUrl = env.GITHUB_API_URL || 'https://api.github.com';
  if (!/^https?:\/\/[^\s]+$/.test(apiUrl))
    throw new SettingError(`GITHUB_API_URL must be an http(s) URL like https://github.example.com/api/v3; got "${apiUrl}"`);
  return {
    kubernetes,
    slack: readSlackSettings(env),
    github: {
      token: env.GITHUB_TOKEN || undefined,
      apiUrl,
      webUrl: githubWebUrl(apiUrl),
      webhookSecret: env.GITHUB_WEBHOOK_SECRET || undefined,
      app: readGitHubApp(env),
    },
    port: port.data,
    databaseUrl,
    dataDir: path.resolve(env.FLOW_DATA_DIR || '.flowops'),
    adminToken,
    bootTimeoutMs: seconds(env, 'FLOW_BOOT_TIMEOUT', 60) * 1000,
    buildTimeoutMs: seconds(env, 'FLOW_BUILD_TIMEOUT', 900) * 1000,
    locks: lockSettings(env),
    approvalTtlMs: seconds(env, 'FLOW_APPROVAL_TTL', 14400) * 1000,
    auditRetentionDays: auditRetentionDays(env),
    nudges: nudgeSettings(env),
    platform,
    workerConcurrency: workerConcurrency.data,
    sandbox,
    router: { port: routerPort.data, host: routerHost, domain, caddyAdmin },
    logLines: logLines.data,
    unverifiedBodyBytes: unverified.data * 2 ** 20,
    slugStore: slugStoreSettings(env),
  };
}

/**
 * FLOW_SLUG_STORE: unset or `dir` (the data dir), or `s3://bucket/prefix`, with
 * FLOW_S3_ENDPOINT for an S3-compatible service and AWS_REGION (us-east-1).
 * Credentials are the AWS SDK's own (AWS_ACCESS_KEY_ID..., a profile, a role).
 */
function slugStoreSettings(env: NodeJS.ProcessEnv): SlugStoreSettings {
  const value = env.FLOW_SLUG_STORE || 'dir';
  const endpoint = env.FLOW_S3_ENDPOINT || undefined;
  if (value === 'dir') {
    if (endpoint)
      throw new SettingError(
        'FLOW_S3_ENDPOINT is set but FLOW_SLUG_STORE is not an s3:// URL; set FLOW_SLUG_STORE=s3://bucket/prefix or unset FLOW_S3_ENDPOINT',
      );
    return { kind: 'dir' };
  }
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(value);
  const bucket = match?.[1] ?? '';
  const prefix = (match?.[2] ?? '').replace(/\/+$/, '');
  const segments = prefix ? prefix.split('/') : [];
  if (
    !match ||
    !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) ||
    prefix.length > 512 ||
    segments.some((s) => !/^[A-Za-z0-9!_.*'()-]+$/.test(s) || s === '.' || s === '..')
  )
    throw new SettingError(
      `FLOW_SLUG_STORE must be dir or s3://bucket/prefix (a bucket name of 3-63 lowercase letters, digits, dots and dashes), got "${value}"; unset it to keep slugs in the data dir`,
    );
  if (endpoint !== undefined && !/^https?:\/\/[^\s/?#]+\/?$/.test(endpoint))
    throw new SettingError(
      `FLOW_S3_ENDPOINT must be the http(s) address of an S3-compatible service, like http://minio:9000, got "${endpoint}"; unset it for AWS S3`,
    );
  const region = env.AWS_REGION || 'us-east-1';
  if (!/^[a-z0-9-]{1,40}$/.test(region))
    throw new SettingError(`AWS_REGION must be a region name like eu-west-1, got "${region}"; unset it for us-east-1`);
  return { kind: 's3', bucket, prefix, endpoint: endpoint?.replace(/\/+$/, ''), region };
}

/** How long a deploy lock lasts without `--for` (FLOW_LOCK_DEFAULT), and at most (FLOW_LOCK_MAX). */
function lockSettings(env: NodeJS.ProcessEnv): { defaultMs: number; maxMs: number } {
  const defaultMs = seconds(env, 'FLOW_LOCK_DEFAULT', 7200) * 1000;
  const maxMs = seconds(env, 'FLOW_LOCK_MAX', 86400) * 1000;
  if (defaultMs > maxMs)
    throw new SettingError(
      `FLOW_LOCK_DEFAULT (${defaultMs / 1000} s) is longer than FLOW_LOCK_MAX (${maxMs / 1000} s); lower FLOW_LOCK_DEFAULT or raise FLOW_LOCK_MAX`,
    );
  return { defaultMs, maxMs };
}

/** FLOW_AUDIT_RETENTION_DAYS: whole days, 1 to 36500 (a hundred years: "keep everything"). */
function auditRetentionDays(env: NodeJS.ProcessEnv): number {
  const days = z.coerce
    .number()
    .int()
    .min(1)
    .max(36_500)
    .safeParse(env.FLOW_AUDIT_RETENTION_DAYS ?? '365');
  if (!days.success)
    throw new SettingError(
      `FLOW_AUDIT_RETENTION_DAYS must be a whole number of days from 1 to 36500, got "${env.FLOW_AUDIT_RETENTION_DAYS}"; set FLOW_AUDIT_RETENTION_DAYS=365 or unset it`,
    );
  return days.data;
}

/** FLOW_NUDGE_INTERVAL (seconds) and FLOW_NUDGE_STAGING_DAYS (whole days, 1 to 365). */
function nudgeSettings(env: NodeJS.ProcessEnv): { intervalMs: number; stagingDays: number } {
  const intervalMs = seconds(env, 'FLOW_NUDGE_INTERVAL', 60) * 1000;
  const days = z.coerce
    .number()
    .int()
    .min(1)
    .max(365)
    .safeParse(env.FLOW_NUDGE_STAGING_DAYS ?? '2');
  if (!days.success)
    throw new SettingError(
      `FLOW_NUDGE_STAGING_DAYS must be a whole number of days from 1 to 365, got "${env.FLOW_NUDGE_STAGING_DAYS}"; set FLOW_NUDGE_STAGING_DAYS=2 or unset it`,
    );
  return { intervalMs, stagingDays: days.data };
}

/** A setting in whole seconds, 1 to 86400 (Kubernetes' deadlines are 32-bit fields; a day is plenty for a rollout or a Job). */
function atMostADay(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = seconds(env, name, fallback);
  if (value > 86_400)
    throw new SettingError(`${name} must be at most 86400 seconds (a day), got "${env[name]}"; set ${name}=${fallback} or unset it`);
  return value;
}

/** A setting in whole seconds (1 or more), or its default; anything else stops start-up naming it. */
function seconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = z.coerce
    .number()
    .int()
    .min(1)
    .safeParse(env[name] ?? String(fallback));
  if (!value.success)
    throw new SettingError(`${name} must be a whole number of seconds, got "${env[name]}"; set ${name}=${fallback} or unset it`);
  return value.data;
}

/** The Kubernetes platform: set up when KUBECONFIG is set or flowops runs in a pod; null otherwise. */
export function readKubernetesSettings(env: NodeJS.ProcessEnv): KubernetesSettings | null {
  const kubeconfig = env.KUBECONFIG || undefined;
  if (!kubeconfig && !env.KUBERNETES_SERVICE_HOST) return null;
  const namespace = env.FLOW_K8S_NAMESPACE || 'default';
  if (!isNamespace(namespace))
    throw new SettingError(`FLOW_K8S_NAMESPACE must be a Kubernetes namespace name (lowercase letters, digits, "-"), got "${namespace}"`);
  const domain = env.FLOW_K8S_DOMAIN ? env.FLOW_K8S_DOMAIN.toLowerCase() : null;
  if (domain !== null && (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(domain) || domain.length > 190))
    throw new SettingError(
      `FLOW_K8S_DOMAIN must be a domain name like apps.example.com, got "${env.FLOW_K8S_DOMAIN}"; unset it for no Ingress`,
    );
  const stackImage = env.FLOW_K8S_STACK_IMAGE || 'node:20-bookworm';
  if (!/^[a-z0-9][a-z0-9._/:@-]{0,254}$/i.test(stackImage))
    throw new SettingError(`FLOW_K8S_STACK_IMAGE must be an image reference like node:20-bookworm, got "${stackImage.slice(0, 80)}"`);
  const publicUrl = (env.FLOW_PUBLIC_URL ?? '').replace(/\/+$/, '');
  // Pods append /slugs/<sha256>.tgz to it: a query or a fragment would swallow that path.
  if (!/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(publicUrl))
    throw new SettingError(
      `FLOW_PUBLIC_URL must be the http(s) URL pods reach flowops at (they fetch slugs from it), like http://flowops.flowops.svc.cluster.local; got "${env.FLOW_PUBLIC_URL ?? ''}"`,
    );
  return {
    kubeconfig,
    namespace,
    domain,
    stackImage,
    rolloutTimeoutMs: atMostADay(env, 'FLOW_K8S_ROLLOUT_TIMEOUT', 300) * 1000,
    jobTimeoutMs: atMostADay(env, 'FLOW_K8S_JOB_TIMEOUT', 3600) * 1000,
    publicUrl,
  };
}

function readSlackSettings(env: NodeJS.ProcessEnv): SlackSettings | null {
  const botToken = env.SLACK_BOT_TOKEN || undefined;
  const signingSecret = env.SLACK_SIGNING_SECRET || undefined;
  const appToken = env.SLACK_APP_TOKEN || undefined;
  const apiUrl = env.SLACK_API_URL || undefined;
  const admins = (env.FLOW_SLACK_ADMINS ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);
  if (!botToken && !signingSecret && !appToken) return null;
  if (!botToken) {
    throw new SettingError(
      `SLACK_BOT_TOKEN is missing: set it to the app's Bot User OAuth Token (xoxb-...) from "OAuth & Permissions", or unset ${appToken ? 'SLACK_APP_TOKEN' : 'SLACK_SIGNING_SECRET'} to run without Slack`,
    );
  }
  if (!botToken.startsWith('xoxb-'))
    throw new SettingError('SLACK_BOT_TOKEN must be a bot token (xoxb-...): copy the Bot User OAuth Token from "OAuth & Permissions"');
  if (appToken && !appToken.startsWith('xapp-'))
    throw new SettingError(
      'SLACK_APP_TOKEN must be an app-level token (xapp-...) with the connections:write scope, from "Basic Information"',
    );
  if (!appToken && !signingSecret) {
    throw new SettingError(
      'SLACK_SIGNING_SECRET is missing: set it to the Signing Secret from "Basic Information" (HTTP mode), or set SLACK_APP_TOKEN for Socket Mode',
    );
  }
  if (apiUrl && !/^https?:\/\/.+\/$/.test(apiUrl))
    throw new SettingError(`SLACK_API_URL must be an http(s) URL ending in "/", like https://slack.com/api/; got "${apiUrl}"`);
  const bad = admins.find((id) => !/^[UW][A-Z0-9]+$/.test(id));
  if (bad) throw new SettingError(`FLOW_SLACK_ADMINS must be Slack user ids (U0123ABCD), comma-separated; "${bad}" is not one`);
  return { mode: appToken ? 'socket' : 'http', botToken, signingSecret, appToken, apiUrl, admins };
}

/** A GitHub App's credentials: all three settings, or none. The key may be PEM text or a path to the .pem file. */
function readGitHubApp(env: NodeJS.ProcessEnv): { appId: string; privateKey: string; installationId: string } | undefined {
  const names = ['GITHUB_APP_ID', 'GITHUB_APP_PRIVATE_KEY', 'GITHUB_APP_INSTALLATION_ID'] as const;
  const given = names.filter((n) => env[n]);
  if (!given.length) return undefined;
  const missing = names.filter((n) => !env[n]);
  if (missing.length)
    throw new SettingError(
      `${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} missing: a GitHub App needs ${names.join(', ')} (or unset them and use GITHUB_TOKEN)`,
    );
  let privateKey = env.GITHUB_APP_PRIVATE_KEY!.replaceAll('\\n', '\n');
  if (!privateKey.includes('PRIVATE KEY')) {
    try {
      privateKey = readFileSync(privateKey, 'utf8');
    } catch {
      throw new SettingError(
        "GITHUB_APP_PRIVATE_KEY must be the app's private key (PEM text, or the path to the .pem file GitHub gave you)",
      );
    }
  }
  if (!/^\d+$/.test(env.GITHUB_APP_ID!) || !/^\d+$/.test(env.GITHUB_APP_INSTALLATION_ID!))
    throw new SettingError("GITHUB_APP_ID and GITHUB_APP_INSTALLATION_ID are numbers, from the app's settings and its installation URL");
  return { appId: env.GITHUB_APP_ID!, privateKey, installationId: env.GITHUB_APP_INSTALLATION_ID! };
}

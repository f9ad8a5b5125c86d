/**
 * The scale path's figures (issue 13): promotion on Kubernetes for a 1 MB and a
 * 100 MB slug, and the operations two replicas sustain together against one.
 * Kubernetes is the tests' stand-in for its API and S3 is s3rver, so these
 * measure flowops, not a cluster.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { readSettings } from '../src/config.ts';
import { startServer } from '../src/server/start-server.ts';
import { promotionMedians } from './promotion.ts';
import { freshDatabase } from '../test/helpers/database.ts';
import { GitRepo } from '../test/helpers/git-repo.ts';
import { KubeStandIn } from '../test/helpers/kube-stand-in.ts';
import { startLocalS3, type LocalS3 } from '../test/helpers/local-s3.ts';
import { spawnServer, type ServerProcess } from '../test/helpers/server-process.ts';

const ms = (x: number) => `${x.toFixed(x < 10 ? 1 : 0)} ms`;
const WEB = "require('node:http').createServer((q, s) => s.end('hi')).listen(process.env.PORT);\n";

/** The settings that put apps on the stand-in and slugs in the local S3. */
function clusterEnv(kubeconfig: string, s3: LocalS3): Record<string, string> {
  return {
    FLOW_PLATFORM: 'kubernetes',
    KUBECONFIG: kubeconfig,
    FLOW_K8S_NAMESPACE: 'apps',
    FLOW_PUBLIC_URL: 'http://flowops.bench',
    FLOW_SLUG_STORE: 's3://slugs/bench',
    FLOW_S3_ENDPOINT: s3.endpoint,
    FLOW_SANDBOX: 'none',
    ...s3.env,
  };
}

export async function scaleOut(dir: string): Promise<void> {
  const stand = await KubeStandIn.start();
  stand.namespaces.add('apps');
  const s3 = await startLocalS3(['slugs']);
  // The AWS SDK takes its credentials from the environment, as in production.
  Object.assign(process.env, s3.env);
  const kubeconfig = await stand.writeKubeconfig(dir);
  try {
    await promotionOnKubernetes(dir, kubeconfig, s3);
    await replicaThroughput(dir, kubeconfig, s3, stand);
  } finally {
    await stand.close();
    await s3.close();
  }
}

async function promotionOnKubernetes(dir: string, kubeconfig: string, s3: LocalS3): Promise<void> {
  console.log(
    'Promotion on Kubernetes (stand-in API, slugs in a local S3) of the staging slug to 3 production apps, a web process each, median of 11 after a warm-up',
  );
  const database = await freshDatabase();
  const server = await startServer(
    readSettings({
      PORT: '0',
      FLOW_DATA_DIR: path.join(dir, 'kube-data'),
      FLOW_ROUTER_PORT: '0',
      ...clusterEnv(kubeconfig, s3),
      ...(database.url ? { DATABASE_URL: database.url } : {}),
    }),
  );
  const { engine } = server;
  try {
    const { one, hundred } = await promotionMedians(engine, dir, 'k8s', { 'index.js': WEB }, 'web: node index.js\n');
    const ratio = hundred / one;
    // Two builds put two slugs in S3; the 24 promotions (warm-ups included) put nothing: the slug stays where the build put it.
    const written = s3.requests.filter((r) => r.method === 'PUT').length;
    console.log(`  1 MB slug     ${ms(one)}`);
    console.log(`  100 MB slug   ${ms(hundred)}   ratio ${ratio.toFixed(2)} (goal: at most 1.2) ${ratio <= 1.2 ? 'ok' : 'MISSED'}`);
    console.log(`  (objects written to S3: ${written}, the 2 builds' slugs; the promotions wrote none, and their time is the rollout's)\n`);
  } finally {
    await engine.idle();
    await server.close();
    await database.drop();
  }
}

/** CPU time a process has used so far (user + system), in ms; Linux only. */
async function cpuMs(pid: number | undefined): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function replicaThroughput(dir: string, kubeconfig: string, s3: LocalS3, stand: KubeStandIn): Promise<void> {
  const CONCURRENCY = 4;
  const APPS = 24;
  const OPS = 96;
  console.log(
    `Operations per minute, one replica vs two on one Postgres: ${OPS} config changes over ${APPS} apps on Kubernetes (stand-in), ${CONCURRENCY} operations at a time per replica (FLOW_WORKER_CONCURRENCY)`,
  );
  if (!process.env.DATABASE_URL) {
    console.log('  skipped: replicas share a Postgres database; set DATABASE_URL (the embedded PGlite is one process)\n');
    return;
  }
  const database = await freshDatabase();
  const db = new pg.Client({ connectionString: database.url });
  await db.connect();
  const token = 'bench-admin-token-0123456789';
  const env = (name: string) => ({
    FLOW_DATA_DIR: path.join(dir, `replica-${name}`),
    PORT: '0',
    FLOW_ADMIN_TOKEN: token,
    FLOW_WORKER_CONCURRENCY: String(CONCURRENCY),
    DATABASE_URL: database.url!,
    ...clusterEnv(kubeconfig, s3),
  });
  const servers: ServerProcess[] = [];
  const command = async (server: ServerProcess, argv: string[]) => {
    const res = await fetch(`${server.url}/api/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ argv }),
    });
    const body = (await res.json()) as { operation?: { id: number }; error?: { message: string } };
    if (!res.ok) throw new Error(body.error?.message ?? `flowops answered ${res.status}`);
    return body.operation?.id ?? null;
  };
  const settle = async (ids: number[]) => {
    for (;;) {
      const { rows } = await db.query(
        "SELECT count(*)::int AS n FROM operations WHERE id = ANY($1) AND status IN ('succeeded', 'failed')",
        [ids],
      );
      if (rows[0].n === ids.length) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  /** OPS config changes sent round robin to the replicas; operations per minute, how many failed, the replicas' CPU per operation. */
  const measure = async (replicas: ServerProcess[], round: string) => {
    const cpuBefore = await Promise.all(replicas.map((r) => cpuMs(r.child.pid)));
    const start = performance.now();
    const ids = await Promise.all(
      Array.from({ length: OPS }, (_, i) =>
        command(replicas[i % replicas.length]!, ['config:set', `scale-${i % APPS}`, `ROUND=${round}${i}`]),
      ),
    );
    await settle(ids.filter((id): id is number => id !== null));
    const minutes = (performance.now() - start) / 60_000;
    const { rows } = await db.query("SELECT count(*)::int AS n FROM operations WHERE id = ANY($1) AND status = 'failed'", [ids]);
    const cpuAfter = await Promise.all(replicas.map((r) => cpuMs(r.child.pid)));
    const cpu = cpuAfter.reduce((sum, c, i) => sum + c - cpuBefore[i]!, 0) / OPS;
    return { perMinute: OPS / minutes, failed: rows[0].n as number, cpu };
  };
  const report = (label: string, one: { perMinute: number; failed: number; cpu: number }, two: typeof one) => {
    const ratio = two.perMinute / one.perMinute;
    console.log(`  ${label}`);
    console.log(
      `    one replica    ${Math.round(one.perMinute)} operations/min (${one.failed} failed), flowops CPU ${ms(one.cpu)} per operation`,
    );
    console.log(
      `    two replicas   ${Math.round(two.perMinute)} operations/min (${two.failed} failed), flowops CPU ${ms(two.cpu)} per operation   ratio ${ratio.toFixed(2)} (goal: at least 1.7) ${ratio >= 1.7 ? 'ok' : 'MISSED'}`,
    );
  };
  try {
    servers.push(await spawnServer(env('a')));
    const repo = await GitRepo.create(path.join(dir, 'scale-repo'), { 'index.js': WEB, Procfile: 'web: node index.js\n' });
    await command(servers[0]!, ['pipelines:create', 'scale', '--repo', repo.dir]);
    for (let i = 0; i < APPS; i++) await command(servers[0]!, ['apps:create', `scale-${i}`, '--pipeline', 'scale', '--stage', 'staging']);
    const deploy = await command(servers[0]!, ['deploy', 'scale', 'to', 'staging']);
    await settle([deploy!]);
    // Two clusters: one whose pods are ready at once (flowops' own cost bounds the rate), and one whose
    // pods take a second to be ready, as on a fast real cluster (operations wait on rollouts, in slots).
    const rounds: { label: string; delayMs: number }[] = [
      { label: 'pods ready at once (the stand-in answers in 20 ms)', delayMs: 20 },
      { label: 'pods ready after 1 s, as on a fast cluster', delayMs: 1000 },
    ];
    const results: { one: Awaited<ReturnType<typeof measure>>; two?: Awaited<ReturnType<typeof measure>> }[] = [];
    for (const [i, round] of rounds.entries()) {
      stand.delayMs = round.delayMs;
      await measure(servers, `w${i}`); // warm-up, not counted
      results.push({ one: await measure(servers, `one${i}`) });
    }
    servers.push(await spawnServer(env('b')));
    for (const [i, round] of rounds.entries()) {
      stand.delayMs = round.delayMs;
      await measure(servers, `v${i}`); // warm-up, not counted
      results[i]!.two = await measure(servers, `two${i}`);
    }
    for (const [i, round] of rounds.entries()) report(round.label, results[i]!.one, results[i]!.two!);
    stand.delayMs = 20;
    console.log('');
  } finally {
    for (const server of servers) server.child.kill('SIGTERM');
    await Promise.all(servers.map((s) => new Promise((r) => (s.child.exitCode !== null ? r(null) : s.child.once('exit', r)))));
    await db.end();
    await database.drop();
  }
}

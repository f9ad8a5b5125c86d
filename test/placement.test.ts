import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommand } from '../src/commands/grammar.ts';
import { placeApp } from '../src/engine/placement.ts';
import { InvalidInput } from '../src/errors.ts';
import { createTestEngine, type TestEngine } from './helpers/test-engine.ts';

// Where an app runs is chosen when it is created (`apps:create --platform`), and checked
// against what this flowops can do: a refused placement creates nothing.

describe('apps:create --platform and --namespace', () => {
  // One engine with a cluster set up; the other settings are checked on placeApp itself, the engine's one rule
  // (each PGlite engine costs seconds to start).
  let withKube: TestEngine;

  beforeAll(async () => {
    withKube = await createTestEngine({ placement: { default: 'local', kubernetes: true, namespace: 'apps' } });
    for (const t of [withKube]) {
      t.repo('/repos/shop').commit({ Procfile: 'web: node index.js\n' }, 'First version');
      await t.engine.createPipeline(t.admin, { name: 'shop', repo: '/repos/shop' });
    }
  });
  afterAll(async () => {
    await withKube?.close();
  });

  it('parses both options, in the CLI and in Slack alike', () => {
    expect(
      parseCommand(['apps:create', 'shop', '--pipeline', 'p', '--stage', 'production', '--platform', 'kubernetes', '--namespace', 'shop']),
    ).toEqual({
      name: 'apps:create',
      app: 'shop',
      pipeline: 'p',
      stage: 'production',
      platform: 'kubernetes',
      namespace: 'shop',
    });
  });

  it('runs apps on this machine by default, and says so', async () => {
    const app = await withKube.engine.createApp(withKube.admin, { name: 'shop-staging', pipeline: 'shop', stage: 'staging' });
    expect(app.platform).toBe('local');
    expect(app.namespace).toBeUndefined();
    expect((await withKube.engine.appInfo(withKube.admin, 'shop-staging')).platform).toBe('local');
  });

  it('refuses Kubernetes where no cluster is set up, naming the setting', () => {
    const plain = { default: 'local' as const, kubernetes: false, namespace: 'default' };
    expect(() => placeApp(plain, { platform: 'kubernetes' })).toThrow(InvalidInput);
    expect(() => placeApp(plain, { platform: 'kubernetes' })).toThrow(/KUBECONFIG/);
    expect(placeApp(plain, {})).toEqual({ platform: 'local', namespace: null });
  });

  it('places an app on Kubernetes in the namespace asked for, or the default one', async () => {
    const named = await withKube.engine.createApp(withKube.admin, {
      name: 'shop-production',
      pipeline: 'shop',
      stage: 'production',
      platform: 'kubernetes',
      namespace: 'shop',
    });
    expect(named).toMatchObject({ platform: 'kubernetes', namespace: 'shop' });
    const defaulted = await withKube.engine.createApp(withKube.admin, {
      name: 'shop-eu',
      pipeline: 'shop',
      stage: 'production',
      platform: 'kubernetes',
    });
    expect(defaulted).toMatchObject({ platform: 'kubernetes', namespace: 'apps' });
    expect(await withKube.engine.appInfo(withKube.admin, 'shop-production')).toMatchObject({ platform: 'kubernetes', namespace: 'shop' });
  });

  it.each([
    ['an unknown platform', { platform: 'heroku' }, /--platform is one of local, kubernetes/],
    ['a namespace with capitals', { platform: 'kubernetes', namespace: 'Shop' }, /not a Kubernetes namespace/],
    ['a namespace with an underscore', { platform: 'kubernetes', namespace: 'my_shop' }, /not a Kubernetes namespace/],
    ['a namespace starting with "-"', { platform: 'kubernetes', namespace: '-shop' }, /not a Kubernetes namespace/],
    ['a namespace of 64 characters', { platform: 'kubernetes', namespace: 'a'.repeat(64) }, /not a Kubernetes namespace/],
    ['a namespace that is a path', { platform: 'kubernetes', namespace: '../kube-system' }, /not a Kubernetes namespace/],
    ['a namespace for a local app', { platform: 'local', namespace: 'shop' }, /--namespace is for apps on Kubernetes/],
  ])('refuses %s and creates nothing', async (_what, asked, message) => {
    await expect(
      withKube.engine.createApp(withKube.admin, { name: 'shop-bad', pipeline: 'shop', stage: 'production', ...asked }),
    ).rejects.toThrow(message);
    await expect(withKube.engine.appInfo(withKube.admin, 'shop-bad')).rejects.toThrow(/no app/i);
  });

  it('with replicas (FLOW_PLATFORM=kubernetes), runs new apps on Kubernetes and refuses the local platform', () => {
    const replicas = { default: 'kubernetes' as const, kubernetes: true, namespace: 'apps' };
    expect(placeApp(replicas, {})).toEqual({ platform: 'kubernetes', namespace: 'apps' });
    expect(() => placeApp(replicas, { platform: 'local' })).toThrow(/FLOW_PLATFORM=kubernetes/);
  });
});

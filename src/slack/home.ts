import { setTimeout as sleep } from 'node:timers/promises';
import { homeView } from '../blocks/pipeline-board.ts';
import type { Engine } from '../engine/engine.ts';
import type { HomeViewer } from '../engine/home-views.ts';
import type { Outbox } from '../engine/outbox.ts';
import { OutboxConsumer } from '../engine/outbox-consumer.ts';
import type { EventView as FlowEvent } from '../engine/views.ts';
import { log } from '../log.ts';
import { slackActor, type SlackDeps } from './context.ts';

const CONSUMER = 'slack-home';
/** Who counts as looking at their App Home: opened it within this long. */
export const HOME_RECENT_MS = 60 * 60_000;
/** A person's App Home is published at most once per this long when changes come in bursts. */
export const HOME_MIN_INTERVAL_MS = 3000;
/** Events that change nothing a board shows. */
const UNSHOWN = /^(operation\.progress|github\.|testrun\.|pullrequest\.|subscription\.|user\.|nudge\.)/;

/**
 * Keeps the App Home true: published when a person opens it, and again — at
 * most once every few seconds — whenever something on their board changes (a
 * release, a promotion, a lock, an approval, a crash), for everyone who opened
 * it within the hour and may see that pipeline. Who looked is kept in the
 * database, and the events are read from the outbox with a lease, so after a
 * restart (or with several flowops processes) the boards still update, once.
 */
export class HomePublisher {
  private readonly loop: OutboxConsumer;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** When each person's last publish was answered: the next change waits HOME_MIN_INTERVAL_MS from there. */
  private readonly lastPublished = new Map<string, number>();
  /** People with a change publish scheduled that has not read their boards yet: more changes ride along. */
  private readonly pending = new Set<string>();
  private readonly stopping = new AbortController();
  private readonly publishing = new Set<Promise<void>>();
  /** Each person's publishes, one after another: a slow one never lands after a newer one. */
  private readonly queues = new Map<string, Promise<void>>();

  constructor(
    private readonly deps: Pick<SlackDeps, 'engine' | 'api' | 'settings' | 'home'>,
    private readonly outbox: Outbox,
    engine: Engine,
  ) {
    this.loop = new OutboxConsumer(engine, outbox, CONSUMER, () => this.round());
  }

  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.pending.clear();
    await this.loop.stop();
    await this.idle();
  }

  /** Resolves once no publish is under way or waiting (tests). */
  async idle(): Promise<void> {
    await this.loop.settle();
    while (this.publishing.size || this.timers.size) {
      await Promise.all(this.publishing);
      if (this.timers.size) await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The person opened their App Home: publish it now (and again once the commits it waits on are counted). */
  async opened(team: string | undefined, user: string): Promise<void> {
    const viewer = await this.deps.engine.homeOpened(team ?? '-', user);
    await this.enqueue(viewer, { count: 'after' });
  }

  /** The person picked a pipeline to see first. */
  async picked(team: string | undefined, user: string, pipeline: string | null): Promise<void> {
    const viewer = await this.deps.engine.homePicked(team ?? '-', user, pipeline);
    await this.enqueue(viewer, { count: 'after' });
  }

  /** Reads new events; schedules a publish for each recent viewer who may see a pipeline they touched. */
  private async round(): Promise<void> {
    for (;;) {
      const events = await this.outbox.next(CONSUMER, 200);
      if (!events?.length) return;
      const touched = new Set(events.filter(shown).map((e) => e.pipeline!));
      // A pipeline destroyed or a grant removed leaves it out of the list: every board that may have shown it is redrawn.
      const lost = events.some((e) => e.type === 'pipeline.destroyed' || e.type.startsWith('access.'));
      if (touched.size) {
        for (const viewer of await this.deps.engine.homeViewers(HOME_RECENT_MS)) {
          const actor = await slackActor(this.deps as SlackDeps, teamOf(viewer), viewer.user);
          if (lost || (await this.deps.engine.listPipelines(actor)).some((p) => touched.has(p.name))) this.schedule(viewer);
        }
      }
      await this.outbox.advance(CONSUMER, events[events.length - 1]!.id);
    }
  }

  /**
   * At most one publish per person per HOME_MIN_INTERVAL_MS; changes in
   * between are shown by the next one. The interval is kept where the publish
   * is sent (see `publish`), not only here: a publish under way when the next
   * change comes in has not been answered yet, and the next one waits for it.
   */
  private schedule(viewer: HomeViewer): void {
    const key = `${viewer.team}:${viewer.user}`;
    if (this.pending.has(key)) return;
    this.pending.add(key);
    const wait = Math.max(100, (this.lastPublished.get(key) ?? 0) + HOME_MIN_INTERVAL_MS - Date.now());
    const timer = setTimeout(() => {
      this.timers.delete(key);
      void this.enqueue(viewer, { count: 'before', throttled: true });
    }, wait);
    timer.unref();
    this.timers.set(key, timer);
  }

  /** Publishes after the person's publishes under way, so the last one out shows the latest state. */
  private enqueue(viewer: HomeViewer, options: PublishOptions): Promise<void> {
    const key = `${viewer.team}:${viewer.user}`;
    const next = (this.queues.get(key) ?? Promise.resolve()).then(() => this.publish(viewer, options));
    this.queues.set(key, next);
    void next.finally(() => this.queues.get(key) === next && this.queues.delete(key));
    return this.track(next);
  }

  private track(work: Promise<void>): Promise<void> {
    this.publishing.add(work);
    return work.finally(() => this.publishing.delete(work));
  }

  /**
   * Builds the person's board and publishes it. Commits not counted yet are
   * asked of the source `before` publishing (a change: worth the wait) or
   * `after` (an open: the board shows at once, then again with the numbers).
   */
  private async publish(viewer: HomeViewer, options: PublishOptions): Promise<void> {
    const key = `${viewer.team}:${viewer.user}`;
    if (options.throttled) {
      const wait = (this.lastPublished.get(key) ?? 0) + HOME_MIN_INTERVAL_MS - Date.now();
      if (wait > 0) await sleep(wait, undefined, { signal: this.stopping.signal }).catch(() => {});
      // Boards are read from here on: a change after this point schedules the next publish.
      this.pending.delete(key);
      if (this.stopping.signal.aborted) return;
    }
    const send = async (view: ReturnType<typeof homeView>) => {
      try {
        await this.deps.api.call((web) => web.views.publish({ user_id: viewer.user, view }));
      } finally {
        this.lastPublished.set(key, Date.now());
      }
    };
    try {
      const actor = await slackActor(this.deps as SlackDeps, teamOf(viewer), viewer.user);
      let boards = await this.deps.engine.boards(actor);
      if (boards.counting && options.count === 'before' && (await this.deps.engine.countCommits(actor)))
        boards = await this.deps.engine.boards(actor);
      // What they picked is read as it is now: a pick made while this publish waited is not undone by it.
      const picked = async () => (await this.deps.engine.homeViewer(viewer.team, viewer.user))?.picked ?? null;
      await send(homeView(boards.pipelines, { picked: await picked() }));
      if (boards.counting && options.count === 'after' && (await this.deps.engine.countCommits(actor))) {
        const counted = await this.deps.engine.boards(actor);
        await send(homeView(counted.pipelines, { picked: await picked() }));
      }
    } catch (err) {
      log.warn({ err: String(err), user: viewer.user }, 'app home not published');
    }
  }
}

/**
 * `count`: when commits not counted yet are asked of the source (see
 * `publish`); `throttled`: a change, sent no sooner than HOME_MIN_INTERVAL_MS
 * after the person's last publish was answered.
 */
interface PublishOptions {
  count: 'before' | 'after';
  throttled?: boolean;
}

/** Slack sends no team id in some payloads; such a viewer is kept under '-'. */
const teamOf = (viewer: HomeViewer) => (viewer.team === '-' ? undefined : viewer.team);

const shown = (e: FlowEvent) => e.pipeline !== null && !UNSHOWN.test(e.type);

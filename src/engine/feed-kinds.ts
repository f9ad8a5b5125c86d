/*
 * What a feed can follow and ask for: plain words, kept apart from the Feeds
 * service so the command grammar (and with it the CLI, which must start in a
 * blink) reads them without loading the database layer.
 */

/** What a feed can follow; a subscription without a list follows all of them. */
export const FEED_EVENTS = ['deploy', 'promote', 'rollback', 'config', 'ci', 'pulls'] as const;

/**
 * What a feed may ask for beyond its events, each by its own flag
 * (`subscribe shop --nudges`): never given to a feed that did not ask. The
 * kinds of nudge (src/engine/nudge-kinds.ts) say which one they go to.
 */
export const FEED_OPT_INS = ['nudges', 'digest'] as const;
export type FeedOptIn = (typeof FEED_OPT_INS)[number];

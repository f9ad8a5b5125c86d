import { pipeline } from 'node:stream/promises';
import type express from 'express';
import type { Request, Response } from 'express';
import { NotFound, Unavailable } from '../errors.ts';
import { log } from '../log.ts';
import { SLUG_ID, type SlugStore } from '../platform/slug-store.ts';
import { slugTokenMatches } from '../platform/slug-url.ts';
import { sendError } from '../http/send-error.ts';

/** One answer for every refusal: a forged token, another app's, a malformed id and a missing slug look alike. */
const refusal = () => new NotFound('no such slug');

/**
 * `GET /slugs/<sha256>.tgz?app=<app>&token=<hex>`: where a pod's init container
 * fetches its slug (src/platform/slug-url.ts makes the URL). The token is an
 * HMAC of the app and slug with `key`, so it reads that slug only, and never
 * expires: a pod that starts again days later still gets its slug. Slugs in the
 * data dir are streamed; slugs in S3 are a redirect to a presigned URL that
 * lasts minutes, so S3 credentials never leave flowops and nothing long-lived
 * reaches S3.
 */
export function mountSlugEndpoint(app: express.Express, options: { store: SlugStore; key: Buffer }): void {
  const { store, key } = options;
  app.get('/slugs/:file', async (req: Request, res: Response) => {
    const id = /^([0-9a-f]{64})\.tgz$/.exec(String(req.params.file))?.[1];
    const appName = req.query.app;
    const token = req.query.token;
    if (!id || !SLUG_ID.test(id) || typeof appName !== 'string' || typeof token !== 'string') {
      sendError(req, res, refusal());
      return;
    }
    if (!slugTokenMatches(key, appName, id, token)) {
      log.warn({ app: appName.slice(0, 100), slug: id }, 'slug request with a wrong token refused');
      sendError(req, res, refusal());
      return;
    }
    res.set('cache-control', 'private, no-store');
    try {
      const url = await store.readUrl(id);
      if (url !== null) {
        if (!(await store.has(id))) {
          sendError(req, res, refusal());
          return;
        }
        res.redirect(302, url);
        return;
      }
      const found = await store.open(id);
      if (!found) {
        sendError(req, res, refusal());
        return;
      }
      res.status(200).set({ 'content-type': 'application/gzip', 'content-length': String(found.size) });
      await pipeline(found.stream, res).catch((err: unknown) => {
        // The pod went away mid-download: it asks again when it starts again.
        log.debug({ err, slug: id }, 'slug download ended early');
      });
    } catch (err) {
      log.error({ err, slug: id }, 'slug store unreachable');
      if (!res.headersSent) sendError(req, res, new Unavailable('the slug store cannot be reached; try again', 5));
      else res.destroy();
    }
  });
}

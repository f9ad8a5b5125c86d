import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { ApiError, ApprovalProgress, CommandRequest, LogsView, OperationProgress, Result } from '../api/types.ts';
import { execute } from '../commands/execute.ts';
import { parseCommand } from '../commands/grammar.ts';
import type { Actor } from '../engine/access.ts';
import type { Engine } from '../engine/engine.ts';
import { FlowError, InvalidInput, NotFound, PayloadTooLarge } from '../errors.ts';
import { log } from '../log.ts';
import { sendError } from '../http/send-error.ts';
import { megabytes } from '../http/unverified-body-budget.ts';

/** The largest JSON body /api takes; a command line is a few hundred bytes. */
const API_BODY_LIMIT = 2 ** 20;
/** Operation ids are Postgres `integer`s: a larger number names no operation. */
const MAX_ID = 2_147_483_647;

// NUL characters and lone surrogates in words are refused by the grammar, for Slack as for the API.
const commandBody = z.object({ argv: z.array(z.string().max(65_536)).max(200) }) satisfies z.ZodType<CommandRequest>;

type Handler = (req: Request, res: Response, actor: Actor) => Promise<void>;

/**
 * The HTTP edge: `/healthz` and the API the CLI speaks. It authenticates, maps
 * errors to status codes, and leaves everything else to the commands and engine.
 * Anything a sender can get wrong is a 4xx saying what; a 500 is a bug.
 */
export function createHttpApp(engine: Engine, mountFronts: (app: express.Express) => void = () => undefined): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Who is asking is settled before the body is read: a request without a valid token costs a token lookup, not a parse.
  app.use('/api', async (req: Request, res: Response, next: NextFunction) => {
    try {
      const token = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1];
      res.locals.actor = await engine.authenticate(token, 'cli');
      next();
    } catch (err) {
      next(err);
    }
  });
  app.use('/api', express.json({ limit: API_BODY_LIMIT }));

  const authed =
    (handler: Handler) =>
    async (req: Request, res: Response, next: NextFunction): Promise<void> => {
      try {
        await handler(req, res, res.locals.actor as Actor);
      } catch (err) {
        next(err);
      }
    };

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });

  app.post(
    '/api/commands',
    authed(async (req, res, actor) => {
      const body = commandBody.safeParse(req.body);
      if (!body.success)
        throw new InvalidInput(
          'the request body must be {"argv": ["command", "word", ...]} (Content-Type: application/json), at most 200 words of at most 64 KB',
        );
      const command = parseCommand(body.data.argv);
      const result: Result = await execute(engine, actor, command);
      res.json(result);
    }),
  );

  app.get(
    '/api/operations/:id',
    authed(async (req, res, actor) => {
      const raw = String(req.params.id);
      if (!/^\d{1,30}$/.test(raw)) throw new InvalidInput(`operation ids are whole numbers, like 12; got "${raw.slice(0, 40)}"`);
      const id = Number(raw);
      if (id < 1 || id > MAX_ID) throw new NotFound(`no operation ${raw}`);
      const after = req.query.after ?? '0';
      // Event ids are Postgres `bigint`s; 18 digits always fit.
      if (typeof after !== 'string' || !/^\d{1,18}$/.test(after))
        throw new InvalidInput('?after= takes the id of the last event seen, a whole number');
      const { operation, events } = await engine.operation(actor, id, after);
      // The same JSON as the rows themselves (a Date serializes as its ISO string), typed as the CLI reads it.
      const progress: OperationProgress = {
        operation,
        events: events.map((event) => ({ ...event, createdAt: event.createdAt.toISOString() })),
      };
      res.json(progress);
    }),
  );

  app.get(
    '/api/approvals/:id',
    authed(async (req, res, actor) => {
      const raw = String(req.params.id);
      if (!/^\d{1,30}$/.test(raw)) throw new InvalidInput(`request ids are whole numbers, like 3; got "${raw.slice(0, 40)}"`);
      const id = Number(raw);
      if (id < 1 || id > MAX_ID) throw new NotFound(`no approval request ${raw}`);
      const progress: ApprovalProgress = await engine.approval(actor, id);
      res.json(progress);
    }),
  );

  // `logs --tail`: the lines after a cursor, polled by the CLI.
  app.get(
    '/api/apps/:app/logs',
    authed(async (req, res, actor) => {
      const query = z
        .object({
          after: z.coerce.number().int().min(0).optional(),
          num: z.coerce.number().int().min(1).max(1500).optional(),
          dyno: z
            .string()
            .regex(/^[a-z0-9_-]+(\.\d+)?$/i)
            .optional(),
          source: z.enum(['app', 'flowops']).optional(),
        })
        .safeParse(req.query);
      if (!query.success) throw new InvalidInput('logs take after, num, dyno and source (app or flowops)');
      const page: LogsView = await engine.logs(actor, String(req.params.app), query.data);
      res.json(page);
    }),
  );

  mountFronts(app);

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'not_found', message: 'no such endpoint' } } satisfies ApiError);
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const refusal = err instanceof FlowError ? err : asRefusal(err);
    if (refusal) {
      sendError(req, res, refusal);
      return;
    }
    log.error({ err, path: req.path }, 'request failed');
    res
      .status(500)
      .json({ error: { code: 'internal', message: 'flowops hit an unexpected error; the server log has the details' } } satisfies ApiError);
  });
  return app;
}

/**
 * The 4xx errors of express itself and of its body parser (http-errors with a
 * `status` and a `type`), as the typed errors the API answers with.
 */
function asRefusal(err: unknown): FlowError | null {
  if (typeof err !== 'object' || err === null) return null;
  const { status, type } = err as { status?: unknown; type?: unknown };
  if (typeof status !== 'number' || status < 400 || status > 499) return null;
  if (type === 'entity.too.large') return new PayloadTooLarge(`the request body is over the ${megabytes(API_BODY_LIMIT)} limit of /api`);
  if (type === 'entity.parse.failed') return new InvalidInput('the request body is not valid JSON');
  if (type === 'encoding.unsupported' || type === 'charset.unsupported')
    return new InvalidInput('the request body must be JSON in UTF-8, uncompressed or gzip/deflate');
  if (type === 'request.aborted' || type === 'request.size.invalid')
    return new InvalidInput('the request body ended before its Content-Length');
  // The router's "Failed to decode param" and whatever else express refuses on its own.
  return new InvalidInput('the request is malformed (a %-escape in the URL, or the body)');
}

/** Listens on `port` (0: a free one) and resolves with the server and its port. */
export function listen(handler: http.RequestListener, port: number): Promise<{ server: http.Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = http.createServer(handler);
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve({ server, port: (server.address() as AddressInfo).port });
    });
  });
}

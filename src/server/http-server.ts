import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { execute } from '../commands/execute.ts';
import { parseCommand } from '../commands/grammar.ts';
import type { Actor } from '../engine/access.ts';
import type { Engine } from '../engine/engine.ts';
import { FlowError, InvalidInput, httpStatusOf } from '../engine/errors.ts';
import { log } from '../log.ts';

const commandBody = z.object({ argv: z.array(z.string()).max(200) });

type Handler = (req: Request, res: Response, actor: Actor) => Promise<void>;

/**
 * The HTTP edge: `/healthz` and the API the CLI speaks. It authenticates, maps
 * errors to status codes, and leaves everything else to the commands and engine.
 */
export function createHttpApp(engine: Engine, mountFronts: (app: express.Express) => void = () => undefined): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use('/api', express.json({ limit: '1mb' }));

  const authed =
    (handler: Handler) =>
    async (req: Request, res: Response, next: NextFunction): Promise<void> => {
      try {
        const token = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1];
        const actor = await engine.authenticate(token, 'cli');
        await handler(req, res, actor);
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
      if (!body.success) throw new InvalidInput('the request body must be {"argv": ["command", "word", ...]}');
      const command = parseCommand(body.data.argv);
      const result = await execute(engine, actor, command);
      res.json(result);
    }),
  );

  app.get(
    '/api/operations/:id',
    authed(async (req, res, actor) => {
      const id = Number(req.params.id);
      if (!Number.isInteger(id)) throw new InvalidInput('operation ids are numbers');
      const after = typeof req.query.after === 'string' && /^\d+$/.test(req.query.after) ? req.query.after : '0';
      res.json(await engine.operation(actor, id, after));
    }),
  );

  mountFronts(app);

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'not_found', message: 'no such endpoint' } });
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof FlowError) {
      res.status(httpStatusOf[err.code]).json({ error: { code: err.code, message: err.message } });
      return;
    }
    if (err instanceof SyntaxError && 'body' in err) {
      res.status(400).json({ error: { code: 'invalid_input', message: 'the request body is not valid JSON' } });
      return;
    }
    log.error({ err, path: req.path }, 'request failed');
    res.status(500).json({ error: { code: 'internal', message: 'flowops hit an unexpected error; the server log has the details' } });
  });
  return app;
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

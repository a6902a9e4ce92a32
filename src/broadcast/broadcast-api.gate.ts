import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { bearerMatches } from '../common/bearer';

/**
 * Guards `POST /api/broadcast` ahead of the body parser, in the order a caller must meet them:
 * route enabled (`404` while `BROADCAST_API_KEY` is unset), then the key (`401`), and only then
 * the body (`400` from the validation). An anonymous caller learns nothing of the body's schema,
 * and a body is never parsed for one.
 */
export function broadcastApiGate(apiKey: string | undefined): RequestHandler {
  const key = apiKey ? Buffer.from(apiKey) : null;
  return (req: Request, res: Response, next: NextFunction): void => {
    if (key === null) {
      res.status(404).json({
        statusCode: 404,
        error: 'Not Found',
        message: `Cannot ${req.method} ${req.originalUrl.split('?')[0]}`,
      });
      return;
    }
    if (!bearerMatches(req.headers.authorization, key)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      res.status(401).json({
        statusCode: 401,
        error: 'Unauthorized',
        message: 'missing or wrong Authorization: Bearer <BROADCAST_API_KEY>',
      });
      return;
    }
    next();
  };
}

import type { ErrorCode } from '../errors.ts';

/** The HTTP status of each error code: the HTTP edge's mapping, not the domain's. */
export const httpStatusOf: Record<ErrorCode, number> = {
  permission_denied: 403,
  not_found: 404,
  conflict: 409,
  invalid_input: 400,
  unauthenticated: 401,
  external_service_error: 502,
  payload_too_large: 413,
  timeout: 408,
  unavailable: 503,
};

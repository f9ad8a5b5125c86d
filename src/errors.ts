/**
 * One error family for everything a person can get wrong. Each carries a `code`
 * the fronts map to a status (HTTP, Slack ephemeral) and a message that says
 * what went wrong and what to do next.
 */
export type ErrorCode =
  | 'permission_denied'
  | 'not_found'
  | 'conflict'
  | 'invalid_input'
  | 'unauthenticated'
  | 'external_service_error'
  | 'payload_too_large'
  | 'timeout'
  | 'unavailable';

export class FlowError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class PermissionDenied extends FlowError {
  constructor(
    message: string,
    /** Who can grant it: the pipeline's managers (user names), for fronts that mention them. */
    readonly managers: string[] = [],
  ) {
    super('permission_denied', message);
  }
}

export class NotFound extends FlowError {
  constructor(message: string) {
    super('not_found', message);
  }
}

export class Conflict extends FlowError {
  constructor(message: string) {
    super('conflict', message);
  }
}

/** Someone else's deploy lock holds the target: the refusal names it (and the audit trail records it). */
export class LockHeld extends Conflict {
  constructor(
    message: string,
    /** What is locked (`shop-staging`, `shop:staging`) and by whom. */
    readonly lock: { target: string; holder: string },
  ) {
    super(message);
  }
}

/**
 * A button or command acted on a release that is no longer the app's current one
 * (someone deployed meanwhile): nothing was done; `current` says what runs now.
 */
export class StaleRelease extends FlowError {
  constructor(
    message: string,
    readonly current: { app: string; version: number; commit: string | null },
    /** For a promotion: the stage it would go to. */
    readonly downstream?: string,
  ) {
    super('conflict', message);
  }
}

export class InvalidInput extends FlowError {
  constructor(message: string) {
    super('invalid_input', message);
  }
}

export class Unauthenticated extends FlowError {
  constructor(message: string) {
    super('unauthenticated', message);
  }
}

export class ExternalServiceError extends FlowError {
  constructor(message: string) {
    super('external_service_error', message);
  }
}

/** A request body over the limit of the endpoint it was sent to; the message names the limit. */
export class PayloadTooLarge extends FlowError {
  constructor(message: string) {
    super('payload_too_large', message);
  }
}

/** A request whose body did not arrive in time. */
export class RequestTimeout extends FlowError {
  constructor(message: string) {
    super('timeout', message);
  }
}

/** flowops cannot take this request now; the sender may try again after `retryAfterSeconds`. */
export class Unavailable extends FlowError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super('unavailable', message);
  }
}

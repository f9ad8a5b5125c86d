import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { SlugStoreSettings } from '../config.ts';

/** A slug's id: the sha256 of its archive, 64 lowercase hex digits. Nothing else names a slug. */
export const SLUG_ID = /^[0-9a-f]{64}$/;

/** How long a presigned URL to a slug in S3 is good for: long enough to start a download, not to keep. */
export const PRESIGNED_URL_SECONDS = 300;

/** A slug in the store that is not what its name says: it is never unpacked, never run. */
export class SlugMismatch extends Error {}

/** A slug the store does not have. */
export class SlugMissing extends Error {}

/**
 * Where slug archives live for every flowops replica. Slugs are content-addressed
 * (by the sha256 of the archive), so an archive is stored once, ever, and never
 * changes: a promotion reuses the id and moves no bytes. The extracted trees a
 * machine runs are that machine's cache (SlugDirs), filled from here.
 */
export interface SlugStore {
  /** `<dataDir>/slugs` or `s3://bucket/prefix`: for log lines, never secret. */
  readonly description: string;
  /** Stores the archive at `file` as slug `id`, unless the store has it already. True when bytes were written. */
  put(id: string, file: string): Promise<boolean>;
  /** Whether the store has slug `id`. */
  has(id: string): Promise<boolean>;
  /** Copies slug `id` to `file`, verifying its sha256 on the way: a mismatch is a SlugMismatch and `file` is not written. */
  fetch(id: string, file: string): Promise<void>;
  /** The archive of slug `id` as a stream and its size, or null when the store has none. */
  open(id: string): Promise<{ stream: Readable; size: number } | null>;
  /** A URL that reads slug `id` for a few minutes without credentials (S3: a presigned GET); null when the store has no such URLs (the data dir). */
  readUrl(id: string): Promise<string | null>;
  /** Throws when the store cannot be reached, saying what to check. */
  check(): Promise<void>;
}

function assertId(id: string): void {
  if (!SLUG_ID.test(id)) throw new Error(`not a slug id (64 hex digits): "${id.slice(0, 80)}"`);
}

/**
 * Writes `source` to `file` through a temporary file beside it, hashing the
 * bytes; the file appears only when their sha256 is `id`.
 */
async function writeVerified(id: string, source: Readable, file: string): Promise<void> {
  const staging = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const hash = createHash('sha256');
  try {
    await pipeline(
      source,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(staging, { mode: 0o600 }),
    );
    const got = hash.digest('hex');
    if (got !== id) throw new SlugMismatch(`slug ${id.slice(0, 12)} in the slug store has sha256 ${got.slice(0, 12)}: refusing to use it`);
    await rename(staging, file);
  } finally {
    await rm(staging, { force: true });
  }
}

/** The default: archives in `<dataDir>/slugs/<sha256>.tgz`, beside the local trees, as flowops always kept them. */
export class DirSlugStore implements SlugStore {
  constructor(readonly dir: string) {}

  get description(): string {
    return this.dir;
  }

  private file(id: string): string {
    assertId(id);
    return path.join(this.dir, `${id}.tgz`);
  }

  async put(id: string, file: string): Promise<boolean> {
    const target = this.file(id);
    if (path.resolve(file) === target || (await this.has(id))) return false;
    const staging = `${target}.${process.pid}.tmp`;
    await copyFile(file, staging);
    await rename(staging, target);
    return true;
  }

  async has(id: string): Promise<boolean> {
    return stat(this.file(id)).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  async fetch(id: string, file: string): Promise<void> {
    const found = await this.open(id);
    if (!found) throw new SlugMissing(`slug ${id.slice(0, 12)} is not in ${this.dir}`);
    await writeVerified(id, found.stream, file);
  }

  async open(id: string): Promise<{ stream: Readable; size: number } | null> {
    const file = this.file(id);
    const size = await stat(file).then(
      (s) => (s.isFile() ? s.size : null),
      () => null,
    );
    return size === null ? null : { stream: createReadStream(file), size };
  }

  readUrl(): Promise<string | null> {
    return Promise.resolve(null);
  }

  check(): Promise<void> {
    return Promise.resolve();
  }
}

const notFound = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
};

/** Slugs in an S3 bucket (or an S3-compatible service), one object per slug: `<prefix>/<sha256>.tgz`. */
export class S3SlugStore implements SlugStore {
  private readonly client: S3Client;

  constructor(private readonly settings: Extract<SlugStoreSettings, { kind: 's3' }>) {
    // The SDK warns on every start that its releases after January 2027 need Node 22; package.json pins
    // releases that run on Node 20 (flowops' engines), so the warning would only alarm operators.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint, forcePathStyle: true } : {}),
      // Checksums only where S3 requires them: S3-compatible servers do not all speak the newer trailing checksums,
      // and flowops verifies every slug's sha256 itself.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  get description(): string {
    return `s3://${this.settings.bucket}${this.settings.prefix ? `/${this.settings.prefix}` : ''}`;
  }

  private key(id: string): string {
    assertId(id);
    return `${this.settings.prefix ? `${this.settings.prefix}/` : ''}${id}.tgz`;
  }

  async put(id: string, file: string): Promise<boolean> {
    // Content-addressed: an object under this key is this slug, uploaded once by whichever replica built it first.
    if (await this.has(id)) return false;
    const { size } = await stat(file);
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.settings.bucket,
        Key: this.key(id),
        Body: createReadStream(file),
        ContentLength: size,
        ContentType: 'application/gzip',
      }),
    );
    return true;
  }

  async has(id: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.key(id) }));
      return true;
    } catch (err) {
      if (notFound(err)) return false;
      throw err;
    }
  }

  async fetch(id: string, file: string): Promise<void> {
    const found = await this.open(id);
    if (!found) throw new SlugMissing(`slug ${id.slice(0, 12)} is not in ${this.description}`);
    await writeVerified(id, found.stream, file);
  }

  async open(id: string): Promise<{ stream: Readable; size: number } | null> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.key(id) }));
      return { stream: object.Body as Readable, size: object.ContentLength ?? 0 };
    } catch (err) {
      if (notFound(err)) return null;
      throw err;
    }
  }

  readUrl(id: string): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.key(id) }), {
      expiresIn: PRESIGNED_URL_SECONDS,
    });
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.settings.bucket }));
    } catch (err) {
      const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      const why = e.$metadata?.httpStatusCode ? `HTTP ${e.$metadata.httpStatusCode}` : (e.message ?? e.name ?? String(err));
      throw new Error(
        `FLOW_SLUG_STORE: the bucket "${this.settings.bucket}" cannot be reached (${why}); check FLOW_S3_ENDPOINT, AWS_REGION and the AWS credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)`,
      );
    }
  }
}

/** The slug store FLOW_SLUG_STORE names; the data dir's is `<dataDir>/slugs`. */
export function openSlugStore(settings: SlugStoreSettings, dataDir: string): SlugStore {
  return settings.kind === 's3' ? new S3SlugStore(settings) : new DirSlugStore(path.join(dataDir, 'slugs'));
}

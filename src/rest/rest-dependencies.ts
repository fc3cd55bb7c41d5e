/** What the REST routes need (one file of its own, so the routes and the router share it without importing each other). */
import type { IncomingMessage } from 'node:http';
import type { GenerationAccess } from '../generations/generation-access.js';
import type { Logger } from '../operations/logger.js';
import type { UsageAccess } from '../operations/usage-reports.js';
import type { ProviderRegistry } from '../providers/provider-registry.js';

/** What the REST routes need. */
export interface RestApiDependencies {
  generations: GenerationAccess;
  registry: ProviderRegistry;
  /** Where unexpected failures are logged; default: a JSON logger on standard output. */
  logger?: Logger;
  /**
   * The generations as the caller of a request may use them (the security layer's per-caller
   * limits); absent = `generations` for everyone.
   */
  generationsFor?: (request: IncomingMessage) => GenerationAccess;
  /** Usage reports as the caller of a request may ask for them (the security layer decides who may read what). */
  usageFor: (request: IncomingMessage) => UsageAccess;
  /** Largest request body read, bytes; absent = `MAX_BODY_BYTES`. */
  maxBodyBytes?: number;
}

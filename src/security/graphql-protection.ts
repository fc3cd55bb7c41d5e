/**
 * The Yoga plugins that bound what one GraphQL operation may ask: graphql-armor's limits (depth,
 * cost, aliases, tokens, directives, and no field suggestions when introspection is off), CSRF
 * prevention, and introspection switched off. Plugins in Yoga's list apply to graphql-ws too
 * (the WebSocket server runs every operation through `yoga.getEnveloped`), except CSRF
 * prevention, which is an HTTP matter (a browser cannot send a cross-site WebSocket message with
 * an API key either: graphql-ws checks the key in `connection_init`).
 */
import { useDisableIntrospection } from '@envelop/disable-introspection';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { GraphQLError, type ValidationContext } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** The header a non-browser client adds to pass CSRF prevention on requests a browser could send cross-site (Yoga's default name). */
export const CSRF_HEADER = 'x-graphql-yoga-csrf';

/** Limits of one operation; 0 turns a limit off. */
export interface GraphQLLimits {
  /** Deepest field nesting (fragments do not add a level). */
  maxDepth: number;
  /** Largest cost by graphql-armor's rule: objects 2, scalars 1, ×1.5 per level of depth. */
  maxCost: number;
  /** Most aliases (`__typename` is free). */
  maxAliases: number;
  /** Most lexical tokens in the document (counted while parsing, so huge documents stop early). */
  maxTokens: number;
  /** Most directives. */
  maxDirectives: number;
}

/** Settings of {@link createGraphQLProtection}. */
export interface GraphQLProtectionOptions {
  limits: GraphQLLimits;
  /** Require {@link CSRF_HEADER} on requests a browser may send without a CORS preflight (GET, form and text/plain POSTs). */
  csrfPrevention: boolean;
  /** Whether `__schema`/`__type` queries are answered; off also hides "Did you mean …" suggestions. */
  introspection: boolean;
}

/**
 * Reports a rejected operation as an ordinary validation error with `extensions.code`
 * `GRAPHQL_VALIDATION_FAILED` (graphql-armor would throw by default, which graphql-ws answers by
 * closing the socket with 4500).
 */
function reportAsValidationError(context: ValidationContext | null, error: GraphQLError): void {
  context?.reportError(
    new GraphQLError(error.message.replace(/^Syntax Error: /, ''), {
      ...(error.nodes && { nodes: error.nodes }),
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    }),
  );
}

/** The protection plugins, in the order Yoga should run them. */
export function createGraphQLProtection(options: GraphQLProtectionOptions): Array<Plugin<Record<string, unknown>>> {
  const { limits } = options;
  const reported = { propagateOnRejection: false, onReject: [reportAsValidationError] };
  const plugins: Array<Plugin<Record<string, unknown>>> = [
    EnvelopArmorPlugin({
      maxDepth: { enabled: limits.maxDepth > 0, n: limits.maxDepth, flattenFragments: true, ...reported },
      costLimit: { enabled: limits.maxCost > 0, maxCost: limits.maxCost, flattenFragments: true, ...reported },
      maxAliases: { enabled: limits.maxAliases > 0, n: limits.maxAliases, ...reported },
      maxDirectives: { enabled: limits.maxDirectives > 0, n: limits.maxDirectives, ...reported },
      // Parsing: the error is thrown by the parser and answered as a syntax error ("Syntax Error: Token limit of N exceeded.").
      maxTokens: { enabled: limits.maxTokens > 0, n: limits.maxTokens },
      blockFieldSuggestion: { enabled: !options.introspection },
    }) as Plugin<Record<string, unknown>>,
  ];
  if (options.csrfPrevention) plugins.push(useCSRFPrevention({ requestHeaders: [CSRF_HEADER] }) as Plugin<Record<string, unknown>>);
  if (!options.introspection) plugins.push(useDisableIntrospection() as Plugin<Record<string, unknown>>);
  return plugins;
}

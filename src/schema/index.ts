/** The GraphQL schema: imports every type module and builds. Nothing else belongs here. */
import { builder } from './builder.js';
import './scalars.js';
import './generation.js';
import './chat.js';
import './image.js';
import './conversation.js';
import './catalog.js';
import './usage.js';
import './api-keys.js';

/** The executable schema of the gateway. */
export const schema = builder.toSchema();

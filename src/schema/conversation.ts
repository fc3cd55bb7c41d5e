/** Conversations the server keeps: `conversation(id)` and `deleteConversation(id)`. */
import type { Conversation as ConversationShape, ConversationMessage as ConversationMessageShape } from '../conversations/conversation-store.js';
import { builder } from './builder.js';
import { ChatRole } from './chat-inputs.js';

const ConversationMessage = builder.objectRef<ConversationMessageShape>('ConversationMessage').implement({
  description: 'One stored message; assistant messages name the provider and model that answered.',
  fields: (t) => ({
    role: t.field({ type: ChatRole, resolve: (message) => message.role }),
    content: t.exposeString('content'),
    provider: t.exposeString('provider', { nullable: true }),
    model: t.exposeString('model', { nullable: true }),
    createdAt: t.field({ type: 'DateTime', resolve: (message) => message.createdAt }),
  }),
});

const Conversation = builder.objectRef<ConversationShape>('Conversation').implement({
  description:
    'A conversation the server keeps (ChatCompletionInput.conversationId). Bounded: the oldest non-system messages are dropped beyond CONVERSATION_MAX_MESSAGES or CONVERSATION_MAX_CHARACTERS; forgotten CONVERSATION_RETENTION_MS after its last turn.',
  fields: (t) => ({
    id: t.exposeID('id'),
    messages: t.field({ type: [ConversationMessage], resolve: (conversation) => conversation.messages }),
    createdAt: t.field({ type: 'DateTime', resolve: (conversation) => conversation.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (conversation) => conversation.updatedAt }),
  }),
});

builder.queryField('conversation', (t) =>
  t.field({
    type: Conversation,
    nullable: true,
    description: 'A conversation by id; null when unknown or expired.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, { conversations }) => conversations.get(id),
  }),
);

builder.mutationField('deleteConversation', (t) =>
  t.field({
    type: 'Boolean',
    description: 'Forgets a conversation; false when it did not exist.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, { conversations }) => conversations.delete(id),
  }),
);

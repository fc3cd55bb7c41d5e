/** Conversations in memory: the tests every conversation store passes, on a clock the test moves. */
import { describe } from 'vitest';
import { MemoryConversationStore } from '../../src/conversations/conversation-store.js';
import { describeConversationStore } from '../helpers/conversation-store-contract.js';

describe('MemoryConversationStore', () => {
  describeConversationStore(async (limits) => {
    let offsetMs = 0;
    const store = new MemoryConversationStore(limits, () => Date.now() + offsetMs);
    return {
      store,
      other: store, // one process, one map
      expire: async () => {
        offsetMs += limits.retentionMs;
      },
      close: () => store.close(),
    };
  });
});

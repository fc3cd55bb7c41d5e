/**
 * Other names of providers, beside their ids: the names clients written for another gateway use
 * (gpt4free's `PollinationsAI`, `HuggingSpace`, …; `docs/protocols.md` §6). A name stands for one
 * provider and may pin one of its models, the way gpt4free has one provider class per Space.
 */

/** What another name of a provider stands for. */
export interface ProviderNameTarget {
  /** The provider id, e.g. `hf-space`. */
  provider: string;
  /** The one model of that provider the name stands for, e.g. `flux-1-schnell`; absent = the provider with any of its models. */
  model?: string;
}

/** A name found in a {@link ProviderNames} table: the name as the table spells it, and its target. */
export interface KnownProviderName extends ProviderNameTarget {
  name: string;
}

/** A table of other names of providers, looked up without regard to case. */
export class ProviderNames {
  private readonly byLowerCaseName = new Map<string, KnownProviderName>();

  /**
   * @param names name → target; names that differ only in case are one name (the last wins).
   */
  constructor(names: Readonly<Record<string, ProviderNameTarget>> = {}) {
    for (const [name, target] of Object.entries(names)) {
      this.byLowerCaseName.set(name.toLowerCase(), { name, provider: target.provider, ...(target.model !== undefined && { model: target.model }) });
    }
  }

  /** The entry of `name` in any case (`pollinationsai` finds `PollinationsAI`), or undefined. */
  find(name: string): KnownProviderName | undefined {
    return this.byLowerCaseName.get(name.toLowerCase());
  }

  /** The names of the table whose provider `isRegistered`, as the table spells them, in table order. */
  namesFor(isRegistered: (providerId: string) => boolean): string[] {
    return [...this.byLowerCaseName.values()].filter((entry) => isRegistered(entry.provider)).map((entry) => entry.name);
  }
}

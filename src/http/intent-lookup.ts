import { looksLikeIntentId } from '../core/ids.js';
import type { IntentRecord } from '../core/intent/record.js';
import type { RouterCore } from '../engine/runtime.js';

/** The intent behind a page URL. Junk ids are turned away before they reach the store. */
export async function intentForPage(core: RouterCore, id: string): Promise<IntentRecord | undefined> {
  if (!looksLikeIntentId(id)) return undefined;
  return core.store.get(id);
}

/** Where the hosted pay page of an intent lives. */
export function payPageUrl(core: RouterCore, intentId: string): string {
  return `${core.settings.publicUrl ?? ''}/pay/${intentId}`;
}

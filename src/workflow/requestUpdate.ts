import { ConcurrencyError, TransientError } from '../domain/errors';
import type { ApprovalRequest } from '../domain/request';
import type { RequestStore, StoredRequest } from '../storage/requestStore';

/** Conflicts in a row before giving up: each one means another writer succeeded, so this only ends under a storm. */
const maxConflicts = 10;

export interface RequestUpdate {
    stored: StoredRequest;
    /** False when `change` found nothing to do on the request as it now stands. */
    changed: boolean;
}

/**
 * A conditional write that survives losing a race. On a conflict the request is read again and `change` asked again
 * with what is there now, so a write made meanwhile (a card claim, a lease) is kept and a decision or outcome made
 * meanwhile is respected. `change` returns undefined when the request, as it now stands, needs nothing. Resolves
 * undefined when the request no longer exists.
 */
export async function updateRequest(
    requests: RequestStore,
    stored: StoredRequest,
    change: (request: ApprovalRequest) => ApprovalRequest | undefined,
): Promise<RequestUpdate | undefined> {
    let current = stored;
    for (let conflicts = 0; conflicts < maxConflicts; conflicts++) {
        const next = change(current.request);
        if (!next) {
            return { stored: current, changed: false };
        }
        try {
            return { stored: await requests.update(current, next), changed: true };
        } catch (err) {
            if (!(err instanceof ConcurrencyError)) {
                throw err;
            }
            const fresh = await requests.get(current.request.id);
            if (!fresh) {
                return undefined;
            }
            current = fresh;
        }
    }
    throw new TransientError(`Request ${stored.request.id} kept changing under this write`);
}

import type { EventGridEvent } from '@azure/functions';
import { pecEvents } from '../../functions/pecEvents';
import { updateRequest } from '../../src/workflow/requestUpdate';
import { requestOf, resourceWriteEvent, seedPendingPec, startHarness, testContext, type Harness } from '../harness';

/** Recording the card once it is out, whatever else wrote the request while it was being posted. */
describe('ensureCard', () => {
    let h: Harness;
    beforeEach(async () => {
        h = await startHarness();
    });
    afterEach(async () => {
        await h.close();
    });

    it('records a posted card even when the request was written during the post, and never posts a second', async () => {
        const seeded = seedPendingPec(h.arm, 'postgres-single');
        h.bot.faults.add({ kind: 'slow', delayMs: 400 }, { method: 'POST', pathIncludes: '/v3/conversations' });
        const event = pecEvents(
            resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent,
            testContext('pecEvents'),
        );

        // While the bot post is in flight, another writer changes the request (as the sweep or a late event may).
        let written = false;
        for (let i = 0; i < 50 && !written; i++) {
            await new Promise((r) => setTimeout(r, 20));
            const stored = await h.deps.requests.getActiveForPec(seeded.pecId);
            if (stored?.request.cardClaimedAt) {
                await updateRequest(h.deps.requests, stored, (r) => ({ ...r, updatedAt: new Date().toISOString() }));
                written = true;
            }
        }
        expect(written).toBe(true);
        await event;

        const request = await requestOf(h, seeded.pecId);
        expect(request.card).toMatchObject({ channel: 'bot' });
        expect(request.cardClaimedAt).toBeUndefined();
        expect(h.bot.conversations).toHaveLength(1);
        // A redelivery, and a later sweep's look, find the card recorded and post nothing.
        await pecEvents(resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent, testContext('pecEvents'));
        expect(h.bot.conversations).toHaveLength(1);
    });
});

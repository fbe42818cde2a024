/**
 * The decision path's two waits, measured against the emulators through the registered handlers:
 * - `clickAnswerMs`: from a Teams click to the invoke's answer (the decision recorded and queued, or refused), with
 *   each outside call given a latency: a realistic one, and Graph and ARM slow.
 * - `applySeconds`: one apply message, from its delivery to the request recorded applied, when ARM answers the PUT at
 *   once with the state settled (the official examples' `provisioningState: "Ready"`), and when it runs a 202
 *   operation that takes one poll.
 */
import { applyDecision } from '../src/workflow/applyDecision';
import { serverKinds } from '../src/domain/ids';
import { applyMaxAttempts } from '../src/storage/applyQueue';
import { click, openCard, people, testContext, type Harness } from '../test/harness';
import { percentile } from './stats';

export interface Latency {
    armMs: number;
    graphMs: number;
    botMs: number;
}

export interface ClickFigures {
    clicks: number;
    latency: Latency;
    p50: number;
    p95: number;
    /** Answers that were not a card (an error, or a failed invocation). */
    failures: number;
}

export interface ApplyFigures {
    applies: number;
    p50: number;
    p95: number;
    failures: number;
}

/** Gives every call to each emulator this much latency until the returned function is called. */
function withLatency(h: Harness, latency: Latency): () => void {
    h.arm.faults.add({ kind: 'slow', delayMs: latency.armMs }, { times: 1e9 });
    h.graph.faults.add({ kind: 'slow', delayMs: latency.graphMs }, { times: 1e9 });
    h.bot.faults.add({ kind: 'slow', delayMs: latency.botMs }, { times: 1e9 });
    return () => {
        h.arm.faults.clear();
        h.graph.faults.clear();
        h.bot.faults.clear();
    };
}

export async function measureClicks(h: Harness, options: { clicks: number; latency: Latency }): Promise<ClickFigures> {
    // The cards are opened before the latency is switched on: only the click is measured. The first click warms the
    // process (loading the Graph client, the first tokens) and is not counted: cold start is measured on its own.
    const requests = [];
    for (let i = 0; i <= options.clicks; i++) {
        const kind = serverKinds[i % serverKinds.length]!;
        requests.push((await openCard(h, kind, { serverName: `click-${Date.now()}-${i}` })).request);
    }
    const stop = withLatency(h, options.latency);
    const times: number[] = [];
    let failures = 0;
    try {
        for (const [i, request] of requests.entries()) {
            const who = i % 2 === 0 ? people.alice : people.bob;
            const started = performance.now();
            const answer = await click(h, request, { who, verb: 'approve', text: 'Fine for the app tier' });
            if (i === 0) {
                continue;
            }
            times.push(performance.now() - started);
            if (answer.status !== 200 || answer.body?.type !== 'application/vnd.microsoft.card.adaptive') {
                failures += 1;
            }
        }
    } finally {
        stop();
    }
    return {
        clicks: times.length,
        latency: options.latency,
        p50: percentile(times, 50),
        p95: percentile(times, 95),
        failures,
    };
}

export async function measureApplies(
    h: Harness,
    options: { applies: number; immediate: boolean },
): Promise<ApplyFigures> {
    const decided = [];
    for (let i = 0; i < options.applies; i++) {
        const kind = serverKinds[i % serverKinds.length]!;
        const { request } = await openCard(h, kind, { serverName: `apply-${Date.now()}-${i}` });
        await click(h, request, { who: people.alice, verb: 'approve', text: 'Fine for the app tier' });
        decided.push(request);
    }
    h.arm.putAnswersAtOnce(options.immediate);
    const times: number[] = [];
    let failures = 0;
    try {
        for (const [i, request] of decided.entries()) {
            const context = testContext('applyDecision');
            const started = performance.now();
            const outcome = await applyDecision(
                h.deps,
                { requestId: request.id, correlationId: request.correlationId },
                { messageId: `bench-${i}`, attempt: 1, maxAttempts: applyMaxAttempts },
                context,
            ).catch(() => 'failed' as const);
            times.push((performance.now() - started) / 1000);
            if (outcome !== 'applied') {
                failures += 1;
            }
        }
    } finally {
        h.arm.putAnswersAtOnce(false);
    }
    // The clicks queued messages too; they would find the requests applied. Clear them so nothing else sees them.
    await h.queue.clearMessages().catch(() => undefined);
    return { applies: times.length, p50: percentile(times, 50), p95: percentile(times, 95), failures };
}

import { DUPLICATE_NOTE_ID } from '../../src/teams/duplicateNote';
import { SHARED_NOTE_ID } from '../../src/teams/adaptiveCard';
import type { EventGridEvent, Timer } from '@azure/functions';
import { pecEvents } from '../../functions/pecEvents';
import { sweepFunction } from '../../functions/sweep';
import { idKey, serverKinds } from '../../src/domain/ids';
import type { ApprovalRequest } from '../../src/domain/request';
import { verifyChain } from '../../src/storage/auditLog';
import { TableRequestStore, type RequestQueries } from '../../src/storage/requestStore';
import { FaultyStorage } from '../emulators/faultyStorage';
import { seededRandom, type FaultKind, type FaultPlan } from '../emulators/server';
import {
    cardActionActivity,
    drainApplyQueue,
    ids,
    people,
    poisonMessages,
    postActivity,
    resourceWriteEvent,
    seedPendingPec,
    startHarness,
    testContext,
    type Harness,
    type SeededPec,
    type TestPerson,
} from '../harness';
import { azuriteConnectionString, lazyTable } from '../storage/azuriteTable';

/**
 * The fault run of issue 6: pending PECs on the four server kinds while a share of the ARM, Bot Connector and storage
 * calls fail (throttled with Retry-After, 500 with the service's error body, or a timeout: no answer, with or without
 * the request carried out). Events are delivered through the real `pecEvents` and redelivered on a thrown error as
 * Event Grid does; approvers click the cards they see in the channel, again when the answer is an error; the apply
 * queue is drained the way the host does it (redelivery, poison); the sweep runs as its timer would, the workflow's
 * clock moved on between runs. Then the faults stop and the outcome is measured against the emulators' own records.
 *
 * No Jest globals here: the benchmark (plain node) imports it too.
 */

export interface FaultRunOptions {
    pecs: number;
    seed: number;
    /** The share of calls that fail, 0 to 1. */
    rate: number;
    log?: (line: string) => void;
    /** The storage proxy the harness's app goes through (see `startFaultHarness`); without it storage is not faulted. */
    storage?: FaultyStorage;
    /** The Retry-After of a throttle, in seconds, or the values to draw it from; default 0 or 1. */
    retryAfterSeconds?: number | readonly number[];
    /** Events, clicks and applies handled at once; default 16. */
    concurrency?: number;
    /** Deliveries of one event before Event Grid gives up (here: before the run does); default 5. */
    eventAttempts?: number;
    /** Clicks on one card before the approver gives up for this round; default 5. */
    clickAttempts?: number;
    /** Sweep runs after the first drain, each an hour later on the workflow's clock; default 4. */
    sweeps?: number;
    /** The share of PECs on which two approvers click at once, one to approve and one to reject; default 0.2. */
    conflictShare?: number;
    /** The share of PECs whose event never comes (Event Grid dead-letters it): only the sweep finds them; 0.1. */
    lostEventShare?: number;
}

export interface ServiceFaults {
    requests: number;
    injected: number;
    byKind: Record<FaultKind, number>;
}

export interface FaultReport {
    pecs: number;
    /** Seeded PECs still Pending in ARM, with no decision, and no request whose recorded card is in the channel. */
    lostPecs: number;
    /**
     * PECs whose connection state ARM changed more than once, or to which ARM committed more than one distinct
     * decision (status and description), or that have more than one decided request.
     */
    doubleDecisions: number;
    /** PECs ARM set to Approved at one point and Rejected at another. */
    approvedAndRejected: number;
    /** PECs whose outcome is not what a sole approver asked for (conflicting clicks excepted: either may win). */
    wrongOutcomes: number;
    /** Cards posted (new conversations at the Bot Connector), and those beyond one per PEC (a post whose answer was lost). */
    cards: number;
    duplicateCards: number;
    /** Second cards the gate found and turned into a "duplicate card" note (not counted in `duplicateCards`). */
    notedDuplicates: number;
    /**
     * Bypass alerts opened: nothing approves a connection outside the gate in this run, so each one is the gate taking
     * its own approval for a bypass (its alert card also counts in `duplicateCards`).
     */
    falseBypassAlerts: number;
    /** PECs Approved or Rejected in ARM with their request applied. */
    applied: number;
    /** PECs still Pending in ARM at the end (with a card: an approver could still decide them). */
    pendingLeft: number;
    /** Requests that ended failed (poison). */
    failed: number;
    /** PUTs ARM committed again with the state the PEC already had (a retried PUT whose first answer was lost). */
    repeatedPuts: number;
    /** Requests whose audit chain does not verify, and requests with a step (decided, applied) audited twice. */
    brokenChains: number;
    duplicateAuditSteps: number;
    /** Applied requests whose trail lacks a step (requested, card-posted, decided, applied), counted by step. */
    missingAuditSteps: Record<string, number>;
    injectedFaults: { arm: number; bot: number; storage: number; total: number };
    services: { arm: ServiceFaults; bot: ServiceFaults; storage: ServiceFaults };
    /** Events never delivered (the PEC left to the sweep), deliveries made, and events given up after the last one. */
    eventsLost: number;
    eventDeliveries: number;
    eventsGivenUp: number;
    clicks: number;
    applyDeliveries: number;
    poisoned: number;
    sweeps: number;
    sweepsFailed: number;
    elapsedMs: number;
    /** The PEC ids counted as lost and as double decisions, for the log. */
    lost: string[];
    doubles: string[];
}

/** Settings for a harness whose app talks to storage through the proxy, with tries bounded tightly enough for a test. */
export function faultRunSettings(storage: FaultyStorage, options: { timeoutMs?: number } = {}): Record<string, string> {
    return {
        AzureWebJobsStorage: storage.connectionString,
        HTTP_TIMEOUT_MS: String(options.timeoutMs ?? 1000),
        ARM_MAX_RETRIES: '3',
        ARM_RETRY_DELAY_MS: '20',
        ARM_LRO_DEADLINE_SECONDS: '15',
    };
}

/**
 * A harness for the fault run: the storage proxy in front of Azurite, and the app's storage, ARM and Bot Connector
 * clients bounded by HTTP_TIMEOUT_MS. The harness's own queue client (the host's part: receive, delete, poison) goes
 * to Azurite directly, since the host's polling is not the app's code.
 */
export async function startFaultHarness(
    options: { timeoutMs?: number } = {},
): Promise<{ h: Harness; storage: FaultyStorage; close(): Promise<void> }> {
    const storage = await FaultyStorage.start(azuriteConnectionString());
    const h = await startHarness({ settings: faultRunSettings(storage, options) });
    return {
        h,
        storage,
        async close() {
            await h.close();
            await storage.close();
        },
    };
}

interface RunPec extends SeededPec {
    subscriptionId: string;
    verb: 'approve' | 'reject';
    /** Two approvers click at once: `verb` by the first, the other verb by the second. */
    conflict: boolean;
    /** Whether the approvers saw their click answered with a card that no longer offers the buttons. */
    done: boolean;
    /** Its event is never delivered. */
    eventLost: boolean;
}

type RunStats = Pick<
    FaultReport,
    'eventsLost' | 'eventDeliveries' | 'eventsGivenUp' | 'clicks' | 'applyDeliveries' | 'sweeps' | 'sweepsFailed'
>;

interface ChannelCard {
    conversationId: string;
    activityId: string;
    requestId: string;
}

const hour = 3_600_000;
const timer = { isPastDue: false } as unknown as Timer;
const cardContentType = 'application/vnd.microsoft.card.adaptive';

export async function runFaultScenario(h: Harness, options: FaultRunOptions): Promise<FaultReport> {
    const started = Date.now();
    const log = options.log ?? (() => undefined);
    const concurrency = options.concurrency ?? 16;
    const random = seededRandom(options.seed);
    const stats: RunStats = {
        eventsLost: 0,
        eventDeliveries: 0,
        eventsGivenUp: 0,
        clicks: 0,
        applyDeliveries: 0,
        sweeps: 0,
        sweepsFailed: 0,
    };

    const pecs: RunPec[] = Array.from({ length: options.pecs }, (_, i) => {
        const kind = serverKinds[i % serverKinds.length]!;
        const subscriptionId = i % 2 === 0 ? ids.ours : ids.second;
        const seeded = seedPendingPec(h.arm, kind, {
            subscriptionId,
            // One server each: seedPendingPec replaces a server of the same name, with its PECs.
            serverName: `${kind}-${options.seed}-${i}`,
            peSubscriptionId: random() < 0.25 ? ids.foreign : ids.ours,
        });
        const verb = random() < 0.5 ? 'approve' : 'reject';
        const conflict = random() < (options.conflictShare ?? 0.2);
        const eventLost = random() < (options.lostEventShare ?? 0.1);
        return { ...seeded, subscriptionId, verb, conflict, done: false, eventLost };
    });
    log(`seeded ${pecs.length} pending PECs on ${new Set(pecs.map((p) => p.kind)).size} server kinds`);

    const plans: [string, FaultPlan | undefined][] = [
        ['arm', h.arm.faults],
        ['bot', h.bot.faults],
        ['storage', options.storage?.faults],
    ];
    plans.forEach(([, plan], i) =>
        plan?.chaos({
            rate: options.rate,
            seed: options.seed * 7 + i + 1,
            retryAfterSeconds: options.retryAfterSeconds ?? [0, 1],
        }),
    );
    const baseline = {
        arm: h.arm.requests.length,
        bot: h.bot.requests.length,
        storage: options.storage?.requests.length ?? 0,
    };

    try {
        // 1. Event Grid: one event per PEC, redelivered while the handler throws; some never come at all.
        stats.eventsLost = pecs.filter((p) => p.eventLost).length;
        await eachLimited(
            pecs.filter((p) => !p.eventLost),
            concurrency,
            async (pec) => {
                const event = resourceWriteEvent(pec.pecId, { subscriptionId: pec.subscriptionId });
                for (let attempt = 1; attempt <= (options.eventAttempts ?? 5); attempt++) {
                    stats.eventDeliveries += 1;
                    const began = Date.now();
                    try {
                        await pecEvents(event as unknown as EventGridEvent, testContext('pecEvents'));
                        return;
                    } catch (err) {
                        // Event Grid redelivers a failed delivery (with backoff; none is needed against emulators).
                        log(
                            `event for ${pec.pecName}, delivery ${attempt}: ${String(err).slice(0, 300)} (${Date.now() - began} ms)`,
                        );
                    }
                }
                stats.eventsGivenUp += 1;
            },
        );
        log(
            `events: ${stats.eventsLost} never sent, ${stats.eventDeliveries} deliveries, ` +
                `${stats.eventsGivenUp} given up; ` +
                `${h.bot.conversations.length} cards (${Date.now() - started} ms)`,
        );

        // 2. Approvers click the cards in the channel; 3. the host drains the apply queue.
        await clickRound(h, pecs, options, concurrency, stats);
        log(`clicks: ${stats.clicks} (${Date.now() - started} ms)`);
        await drain(h, concurrency, options.pecs, stats);
        log(`applies: ${stats.applyDeliveries} deliveries (${Date.now() - started} ms)`);

        // 4. The sweep on its timer, an hour apart on the workflow's clock: the first sighting of a PEC without a
        // request waits for its event, the next opens it (a lost event, or one given up); decisions whose apply got
        // lost are queued again.
        for (let round = 1; round <= (options.sweeps ?? 4); round++) {
            const offset = round * hour;
            h.deps.now = () => new Date(Date.now() + offset);
            stats.sweeps += 1;
            const swept = Date.now();
            try {
                await sweepFunction(timer, testContext('sweep'));
            } catch {
                // A failed timer run is retried by the next one.
                stats.sweepsFailed += 1;
            }
            log(`sweep ${round} ran in ${Date.now() - swept} ms`);
            await clickRound(h, pecs, options, concurrency, stats);
            await drain(h, concurrency, options.pecs, stats);
            log(
                `sweep ${round}: ${h.bot.conversations.length} cards, ${stats.applyDeliveries} apply deliveries ` +
                    `(${Date.now() - started} ms)`,
            );
            // Once ARM holds a decision for every PEC and every request has settled, nothing is left to recover
            // (later runs would only redraw cards). Read past the faults: ARM's own state, and Azurite directly.
            if (pecs.every((p) => armStatus(h, p.pecId) !== 'Pending') && !(await anyUnsettled(h, pecs))) {
                break;
            }
        }
    } finally {
        for (const [, plan] of plans) {
            plan?.chaos(undefined);
        }
    }

    const report = await measure(h, pecs, options, stats, baseline, plans);
    report.elapsedMs = Date.now() - started;
    log(
        `lost ${report.lostPecs}, double decisions ${report.doubleDecisions}; faults arm ${report.injectedFaults.arm}, ` +
            `bot ${report.injectedFaults.bot}, storage ${report.injectedFaults.storage}; ${report.elapsedMs} ms`,
    );
    return report;
}

/** Each approver clicks the newest card of each PEC they have not finished with, while it still offers the buttons. */
async function clickRound(
    h: Harness,
    pecs: RunPec[],
    options: FaultRunOptions,
    concurrency: number,
    stats: { clicks: number },
): Promise<void> {
    const channel = channelCards(h);
    await eachLimited(
        pecs.filter((p) => !p.done),
        concurrency,
        async (pec) => {
            const cards = channel.get(pec.pecName) ?? [];
            if (cards.length === 0 || !cards.some((c) => offersButtons(h, c))) {
                return;
            }
            const other = pec.verb === 'approve' ? 'reject' : 'approve';
            const clickers: [TestPerson, 'approve' | 'reject'][] = pec.conflict
                ? [
                      [people.alice, pec.verb],
                      [people.bob, other],
                  ]
                : [[pec.verb === 'approve' ? people.alice : people.bob, pec.verb]];
            const results = await Promise.all(
                clickers.map(([who, verb]) => personClicks(h, cards, who, verb, options, stats)),
            );
            pec.done = results.some(Boolean);
            if (!pec.done && !pec.conflict) {
                // A request the sweep opened has no known requester, so an approval needs a second approver: the
                // first one's own view keeps the buttons ("1 of 2"), and a colleague agrees.
                const second = pec.verb === 'approve' ? people.bob : people.alice;
                pec.done = await personClicks(h, cards, second, pec.verb, options, stats);
            }
        },
    );
}

/**
 * One approver on one PEC: the newest card first (an older one is a post whose answer was lost, and refuses the click
 * as not this request's card), again while the answer is an error or still offers the buttons. True when a click was
 * answered with a card without buttons (recorded, or already decided), and not one waiting for another approver.
 */
async function personClicks(
    h: Harness,
    cards: ChannelCard[],
    who: TestPerson,
    verb: 'approve' | 'reject',
    options: FaultRunOptions,
    stats: { clicks: number },
): Promise<boolean> {
    for (const card of [...cards].reverse()) {
        const request = {
            id: card.requestId,
            card: {
                channel: 'bot',
                serviceUrl: h.bot.serviceUrl,
                conversationId: card.conversationId,
                activityId: card.activityId,
            },
        } as unknown as ApprovalRequest;
        for (let attempt = 1; attempt <= (options.clickAttempts ?? 5); attempt++) {
            stats.clicks += 1;
            let answer;
            try {
                answer = await postActivity(
                    h,
                    cardActionActivity(h, request, {
                        who,
                        verb,
                        text: verb === 'reject' ? 'Not from a network we know' : 'Fine for the app tier',
                    }),
                );
            } catch {
                // The invocation failed: Teams shows "Something went wrong", and the approver clicks again.
                continue;
            }
            if (answer.status >= 500) {
                continue;
            }
            if (answer.body?.type !== cardContentType) {
                // Refused (not this request's card, or no such request): try the next card.
                break;
            }
            if (!hasButtons(answer.body.value)) {
                // Without buttons because this approver's part is done, while the request waits for another one.
                return !awaitsMoreApprovals(answer.body.value);
            }
        }
    }
    return false;
}

/**
 * Whether a thread's root message was turned into the gate's "duplicate card" note after it was posted (a second card
 * of a request, found once a lost post's outcome could be told): it is no longer a place to decide.
 */
export function isNotedDuplicate(h: Harness, conversationId: string): boolean {
    const root = h.bot.activities.find((a) => a.conversationId === conversationId && !a.replyToId);
    return JSON.stringify(root?.activity ?? {}).includes(`"id":"${DUPLICATE_NOTE_ID}"`);
}

/** The live cards in the channel by PEC name, oldest first, with the request id their buttons carry. */
function channelCards(h: Harness): Map<string, ChannelCard[]> {
    const byPec = new Map<string, ChannelCard[]>();
    for (const c of h.bot.conversations) {
        if (isNotedDuplicate(h, c.id)) {
            continue;
        }
        const text = JSON.stringify(c.parameters.activity);
        const requestId = /"requestId":"([A-Za-z0-9_-]+)"/.exec(text)?.[1];
        // Kind names have one word or several (`pe-redis.…`, `pe-postgres-flexible.…`).
        const pecName = /pe-[a-z]+(?:-[a-z]+)*\.[0-9a-f-]{36}/.exec(text)?.[0];
        if (!requestId || !pecName) {
            continue;
        }
        const list = byPec.get(pecName) ?? [];
        list.push({ conversationId: c.id, activityId: c.activityId, requestId });
        byPec.set(pecName, list);
    }
    return byPec;
}

/** Whether the card as it now stands in the channel (after updates) still offers Approve and Reject to approvers. */
function offersButtons(h: Harness, card: ChannelCard): boolean {
    const root = h.bot.activities.find(
        (a) => a.conversationId === card.conversationId && a.activityId === card.activityId,
    );
    const attachments = (root?.activity.attachments ?? []) as { content?: unknown }[];
    // The channel's card is the shared view: while open it says who may decide, and approvers get the buttons in
    // their own view (the click below goes to the bot either way).
    const content = attachments[0]?.content;
    return hasButtons(content) || JSON.stringify(content ?? {}).includes(`"id":"${SHARED_NOTE_ID}"`);
}

/** Whether a card says the request needs more approvals than it has (an unknown requester's, "1 of 2"). */
function awaitsMoreApprovals(card: unknown): boolean {
    return /Waiting for approvals: \d+ of \d+/.test(JSON.stringify(card ?? {}));
}

function hasButtons(card: unknown): boolean {
    const actions = (card as { actions?: { type?: string; verb?: string }[] } | undefined)?.actions ?? [];
    return actions.some((a) => a.type === 'Action.Execute' && (a.verb === 'approve' || a.verb === 'reject'));
}

/** The host's part: several instances draining the queue at once, one message each time, until it is empty. */
async function drain(h: Harness, concurrency: number, pecs: number, stats: { applyDeliveries: number }): Promise<void> {
    const cap = Math.max(50, pecs * 20);
    const start = stats.applyDeliveries;
    await eachLimited(
        Array.from({ length: concurrency }, (_, i) => i),
        concurrency,
        async () => {
            while (stats.applyDeliveries - start < cap) {
                const n = await drainApplyQueue(h, { maxDeliveries: 1 });
                if (n === 0) {
                    return;
                }
                stats.applyDeliveries += n;
            }
        },
    );
}

async function measure(
    h: Harness,
    pecs: RunPec[],
    options: FaultRunOptions,
    stats: RunStats,
    baseline: { arm: number; bot: number; storage: number },
    plans: [string, FaultPlan | undefined][],
): Promise<FaultReport> {
    const requests = new Map<string, ApprovalRequest[]>();
    const store = h.deps.requests as unknown as Partial<RequestQueries>;
    if (!store.listRequests) {
        throw new Error('The fault run needs the Table request store, which can list every request');
    }
    for await (const { request } of store.listRequests()) {
        const key = idKey(request.pecId);
        requests.set(key, [...(requests.get(key) ?? []), request]);
    }
    const channel = channelCards(h);
    const posted = new Set(h.bot.conversations.map((c) => `${c.id}\n${c.activityId}`));
    const report: FaultReport = {
        pecs: pecs.length,
        lostPecs: 0,
        doubleDecisions: 0,
        approvedAndRejected: 0,
        wrongOutcomes: 0,
        cards: h.bot.conversations.length,
        duplicateCards: 0,
        notedDuplicates: h.bot.conversations.filter((c) => isNotedDuplicate(h, c.id)).length,
        falseBypassAlerts: [...requests.values()].flat().filter((r) => r.bypass).length,
        applied: 0,
        pendingLeft: 0,
        failed: 0,
        repeatedPuts: 0,
        brokenChains: 0,
        duplicateAuditSteps: 0,
        missingAuditSteps: {},
        injectedFaults: { arm: 0, bot: 0, storage: 0, total: 0 },
        services: {
            arm: serviceFaults(h.arm.faults, h.arm.requests.length - baseline.arm),
            bot: serviceFaults(h.bot.faults, h.bot.requests.length - baseline.bot),
            storage: serviceFaults(options.storage?.faults, (options.storage?.requests.length ?? 0) - baseline.storage),
        },
        ...stats,
        poisoned: (await poisonMessages(h)).length,
        elapsedMs: 0,
        lost: [],
        doubles: [],
    };
    report.injectedFaults = {
        arm: report.services.arm.injected,
        bot: report.services.bot.injected,
        storage: report.services.storage.injected,
        total: plans.reduce((sum, [, plan]) => sum + (plan?.injectedTotal ?? 0), 0),
    };

    for (const pec of pecs) {
        const mine = requests.get(idKey(pec.pecId)) ?? [];
        const state = armStatus(h, pec.pecId);
        const commits = h.arm.commits.filter((c) => idKey(c.pecId) === idKey(pec.pecId));
        const changes = commits.filter((c) => c.from !== c.to).length;
        const targets = new Set(commits.map((c) => `${c.to}\n${c.description}`));
        const decided = mine.filter((r) => r.decision && ['decided', 'applied', 'failed'].includes(r.status));
        report.repeatedPuts += commits.length - changes;
        report.duplicateCards += Math.max(0, (channel.get(pec.pecName)?.length ?? 0) - 1);
        if (changes > 1 || targets.size > 1 || decided.length > 1) {
            report.doubleDecisions += 1;
            report.doubles.push(pec.pecId);
        }
        const outcomes = new Set(commits.map((c) => c.to));
        if (outcomes.has('Approved') && outcomes.has('Rejected')) {
            report.approvedAndRejected += 1;
        }
        const liveCard = mine.some(
            (r) => r.card?.channel === 'bot' && posted.has(`${r.card.conversationId}\n${r.card.activityId}`),
        );
        if (state === 'Pending' && decided.length === 0 && !liveCard) {
            report.lostPecs += 1;
            report.lost.push(pec.pecId);
        }
        if (state === 'Pending') {
            report.pendingLeft += 1;
        }
        if ((state === 'Approved' || state === 'Rejected') && mine.some((r) => r.status === 'applied')) {
            report.applied += 1;
            const wanted = pec.verb === 'approve' ? 'Approved' : 'Rejected';
            if (!pec.conflict && state !== wanted) {
                report.wrongOutcomes += 1;
            }
        }
        report.failed += mine.filter((r) => r.status === 'failed').length;
        for (const r of mine) {
            const trail = await h.deps.audit.list(r.id);
            if (verifyChain(trail).length > 0) {
                report.brokenChains += 1;
            }
            for (const step of ['decided', 'applied'] as const) {
                if (trail.filter((e) => e.action === step).length > 1) {
                    report.duplicateAuditSteps += 1;
                }
            }
            if (r.status === 'applied') {
                for (const step of ['requested', 'card-posted', 'decided', 'applied']) {
                    if (!trail.some((e) => e.action === step)) {
                        report.missingAuditSteps[step] = (report.missingAuditSteps[step] ?? 0) + 1;
                    }
                }
            }
        }
    }
    return report;
}

/** Whether a seeded PEC has a request still pending or decided (not applied), read on Azurite directly. */
async function anyUnsettled(h: Harness, pecs: readonly RunPec[]): Promise<boolean> {
    const seeded = new Set(pecs.map((p) => idKey(p.pecId)));
    const direct = new TableRequestStore(lazyTable(h.config.REQUESTS_TABLE));
    for await (const { request } of direct.listRequests({ statuses: ['pending', 'decided'] })) {
        if (seeded.has(idKey(request.pecId))) {
            return true;
        }
    }
    return false;
}

/** What ARM holds for a PEC, read from the emulator (not through the app). */
function armStatus(h: Harness, pecId: string): string | undefined {
    const pec = h.arm.getPec(pecId) as { properties?: { privateLinkServiceConnectionState?: { status?: string } } };
    return pec?.properties?.privateLinkServiceConnectionState?.status;
}

function serviceFaults(plan: FaultPlan | undefined, requests: number): ServiceFaults {
    const byKind = { ...(plan?.injected ?? { throttle: 0, error: 0, slow: 0, drop: 0, hang: 0 }) };
    return { requests, injected: plan?.injectedTotal ?? 0, byKind };
}

/** Runs `work` over `items`, at most `limit` at a time; rejects with the first failure once all have settled. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const failures: unknown[] = [];
    const worker = async () => {
        while (next < items.length) {
            const item = items[next++] as T;
            try {
                await work(item);
            } catch (err) {
                failures.push(err);
            }
        }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
    if (failures.length > 0) {
        throw failures[0];
    }
}

import type { EventGridEvent, Timer } from '@azure/functions';
import fc from 'fast-check';
import { pecEvents } from '../../functions/pecEvents';
import { sweepFunction } from '../../functions/sweep';
import { armDescription, targetStatus } from '../../src/domain/decision';
import { idKey, serverKinds } from '../../src/domain/ids';
import type { ApprovalRequest } from '../../src/domain/request';
import { TableAuditLog, verifyChain } from '../../src/storage/auditLog';
import { TableRequestStore } from '../../src/storage/requestStore';
import { lazyTable } from '../storage/azuriteTable';
import { isNotedDuplicate } from './faultRun';
import { specSources } from '../emulators/armKinds';
import type { Fault } from '../emulators/server';
import {
    click,
    drainApplyQueue,
    people,
    resourceWriteEvent,
    seedPendingPec,
    testContext,
    type Harness,
    type SeededPec,
} from '../harness';

/**
 * The model-based test of issue 19: fast-check commands drive events, redeliveries, clicks, concurrent clicks, queue
 * redeliveries and duplicates, concurrent queue consumers, sweeps, portal decisions and injected faults in random
 * orders against the real handlers, the real store on Azurite and the emulators. After every step it checks:
 * - at most one card per request in the channel;
 * - at most one decision applied per PEC: ARM changed its state at most once, and at most one request is applied;
 * - once the queue is drained, ARM and the requests agree: an applied request's decision is what ARM holds;
 * - every request's audit chain verifies.
 *
 * No Jest globals here: the benchmark (plain node) runs it too, for ≥ 10,000 steps.
 */

export interface ModelRunOptions {
    seed: number;
    /** Steps to run at least: command sequences are generated (each against fresh PECs) until this many ran. */
    steps: number;
    /** Commands per sequence, at most. */
    maxCommands: number;
    /** PECs per sequence. */
    pecs?: number;
    /**
     * Replays one counterexample: fast-check's `path` from its report, and the number of sequences that ran before it
     * (the server kinds of a sequence's PECs follow that count).
     */
    replay?: { path: string; sequencesBefore: number };
    log?: (line: string) => void;
}

export interface ModelReport {
    seed: number;
    runs: number;
    /** Commands run (steps), each followed by the invariant checks. */
    modelSteps: number;
    /** Invariant violations found (the run stops at the first: fast-check then shrinks it). */
    modelViolations: number;
    /** The first violation and the command sequence that led to it, when there is one. */
    counterexample?: string;
    /** How often each command ran. */
    commands: Record<string, number>;
    elapsedMs: number;
}

/** What the model knows: the PECs of this sequence, and what ARM was told outside the app. */
interface Model {
    pecs: SeededPec[];
    /** PECs decided in the portal (outside the app), by index. */
    portal: Set<number>;
}

interface Real {
    h: Harness;
    /** The tables read straight on Azurite, with the SDK's own timeouts: the checks must not fail where the app may. */
    direct: { requests: TableRequestStore; audit: TableAuditLog };
    /** Hours the workflow's clock has been moved on by sweeps. */
    hours: number;
    steps: { count: number };
    counts: Record<string, number>;
    /** Commits ARM had before this sequence, so only this sequence's count. */
    commitsBefore: number;
}

type ModelCommand = fc.AsyncCommand<Model, Real>;

const timer = { isPastDue: false } as unknown as Timer;
const hour = 3_600_000;

class InvariantViolation extends Error {
    constructor(message: string) {
        super(`invariant violated: ${message}`);
    }
}

/** A read for the checks, tried again while the store is slow (the app under test runs with 300 ms tries). */
async function patiently<T>(read: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
        try {
            return await read();
        } catch (err) {
            if (attempt >= 5) {
                throw err;
            }
            await new Promise((r) => setTimeout(r, 200 * attempt));
        }
    }
}

/** Runs the commands and checks the invariants after each. */
abstract class Step implements ModelCommand {
    abstract readonly name: string;
    check(): boolean {
        return true;
    }
    async run(model: Model, real: Real): Promise<void> {
        real.counts[this.name] = (real.counts[this.name] ?? 0) + 1;
        await this.act(model, real);
        real.steps.count += 1;
        await checkInvariants(model, real);
    }
    protected abstract act(model: Model, real: Real): Promise<void>;
    abstract toString(): string;
}

class DeliverEvent extends Step {
    readonly name = 'event';
    constructor(private readonly pec: number) {
        super();
    }
    protected async act(model: Model, real: Real) {
        const pec = model.pecs[this.pec % model.pecs.length]!;
        // A throw is a failed delivery: Event Grid delivers the event again (here at once, up to three times; a later
        // command may deliver it once more).
        for (let delivery = 1; delivery <= 3; delivery++) {
            const ok = await pecEvents(
                resourceWriteEvent(pec.pecId) as unknown as EventGridEvent,
                testContext('pecEvents'),
            ).then(
                () => true,
                () => false,
            );
            if (ok) {
                return;
            }
        }
        void real;
    }
    toString() {
        return `event(${this.pec})`;
    }
}

class Click extends Step {
    readonly name = 'click';
    constructor(
        private readonly pec: number,
        private readonly who: 'alice' | 'bob',
        private readonly verb: 'approve' | 'reject',
    ) {
        super();
    }
    protected async act(model: Model, real: Real) {
        const request = await currentRequest(real, model.pecs[this.pec % model.pecs.length]!);
        if (request?.card) {
            await click(real.h, request, { who: people[this.who], verb: this.verb, text: `${this.verb} in the model` });
        }
    }
    toString() {
        return `click(${this.pec}, ${this.who}, ${this.verb})`;
    }
}

class ConcurrentClicks extends Step {
    readonly name = 'concurrent-clicks';
    constructor(private readonly pec: number) {
        super();
    }
    protected async act(model: Model, real: Real) {
        const request = await currentRequest(real, model.pecs[this.pec % model.pecs.length]!);
        if (request?.card) {
            await Promise.all([
                click(real.h, request, { who: people.alice, verb: 'approve', text: 'approve at once' }),
                click(real.h, request, { who: people.bob, verb: 'reject', text: 'reject at once' }),
            ]);
        }
    }
    toString() {
        return `concurrentClicks(${this.pec})`;
    }
}

/** The host's consumers: one or two instances draining the queue at once, some or all of it. */
class Drain extends Step {
    readonly name = 'drain';
    constructor(
        private readonly consumers: 1 | 2,
        private readonly deliveries: number,
    ) {
        super();
    }
    protected async act(_model: Model, real: Real) {
        await Promise.all(
            Array.from({ length: this.consumers }, () =>
                drainApplyQueue(real.h, { maxDeliveries: this.deliveries }).catch(() => 0),
            ),
        );
    }
    toString() {
        return `drain(${this.consumers}, ${this.deliveries})`;
    }
}

/** A duplicate apply message (the queue delivers at least once; a retried send can leave two). */
class DuplicateMessage extends Step {
    readonly name = 'queue-duplicate';
    constructor(private readonly pec: number) {
        super();
    }
    protected async act(model: Model, real: Real) {
        const request = await currentRequest(real, model.pecs[this.pec % model.pecs.length]!);
        if (request && request.decision) {
            await real.h.deps.applyQueue.send({ requestId: request.id, correlationId: request.correlationId });
        }
    }
    toString() {
        return `duplicateMessage(${this.pec})`;
    }
}

class Sweep extends Step {
    readonly name = 'sweep';
    protected async act(_model: Model, real: Real) {
        // An hour passes between runs, as on the timer: grace periods, stuck applies and reminders come due.
        real.hours += 1;
        const offset = real.hours * hour;
        real.h.deps.now = () => new Date(Date.now() + offset);
        await sweepFunction(timer, testContext('sweep')).catch(() => undefined);
    }
    toString() {
        return 'sweep()';
    }
}

/** Someone decides the PEC in the Azure portal while it is Pending (never after: that is another question). */
class PortalDecision extends Step {
    readonly name = 'portal';
    constructor(
        private readonly pec: number,
        private readonly status: 'Approved' | 'Rejected',
    ) {
        super();
    }
    protected async act(model: Model, real: Real) {
        const index = this.pec % model.pecs.length;
        const pec = model.pecs[index]!;
        if (armStatus(real, pec.pecId) === 'Pending' && !armBusy(real, pec.pecId)) {
            real.h.arm.setPecStatus(pec.pecId, this.status, `${this.status} in the portal`);
            model.portal.add(index);
        }
    }
    toString() {
        return `portal(${this.pec}, ${this.status})`;
    }
}

type FaultTarget = 'arm-put' | 'arm-get' | 'bot-post' | 'bot-update' | 'graph-membership';

/** One fault on the next matching call; a lost answer means the call took effect and its answer never came. */
class InjectFault extends Step {
    readonly name = 'fault';
    constructor(
        private readonly target: FaultTarget,
        private readonly kind: 'error' | 'throttle' | 'lost-answer' | 'conflict',
    ) {
        super();
    }
    protected async act(_model: Model, real: Real) {
        const { h } = real;
        const fault: Fault =
            this.kind === 'error'
                ? { kind: 'error', status: 503, code: 'ServiceUnavailable' }
                : this.kind === 'throttle'
                  ? { kind: 'throttle', retryAfterSeconds: 0 }
                  : this.kind === 'conflict'
                    ? { kind: 'error', status: 409, code: 'AnotherOperationInProgress' }
                    : { kind: 'hang', afterProcessing: true, dropAfterMs: 1_000 };
        switch (this.target) {
            case 'arm-put':
                h.arm.faults.add(fault, { method: 'PUT', pathIncludes: '/privateEndpointConnections/' });
                return;
            case 'arm-get':
                h.arm.faults.add(this.kind === 'conflict' ? { kind: 'error', status: 500 } : fault, {
                    method: 'GET',
                    pathIncludes: '/privateEndpointConnections/',
                });
                return;
            case 'bot-post':
                // A card post (a new thread), not a reply in one.
                h.bot.faults.add(this.kind === 'conflict' ? { kind: 'error', status: 502 } : fault, {
                    method: 'POST',
                    pathPattern: /\/v3\/conversations\/?$/,
                });
                return;
            case 'bot-update':
                h.bot.faults.add(this.kind === 'conflict' ? { kind: 'error', status: 502 } : fault, { method: 'PUT' });
                return;
            case 'graph-membership':
                // Membership checks only: the channel read that finds a lost card is the one way to know it exists.
                h.graph.faults.add(
                    this.kind === 'lost-answer' || this.kind === 'conflict' ? { kind: 'error', status: 503 } : fault,
                    { pathIncludes: '/checkMemberGroups' },
                );
                return;
        }
    }
    toString() {
        return `fault(${this.target}, ${this.kind})`;
    }
}

/**
 * The commands, weighted: an entry listed twice is drawn twice as often. Events and faults come often, so that lost
 * answers meet the redeliveries that must not repeat them.
 */
function commandArbs(pecs: number): fc.Arbitrary<ModelCommand>[] {
    const pec = fc.nat({ max: pecs - 1 });
    const event = pec.map((p) => new DeliverEvent(p));
    const clickOne = fc
        .tuple(
            pec,
            fc.constantFrom('alice' as const, 'bob' as const),
            fc.constantFrom('approve' as const, 'reject' as const),
        )
        .map(([p, who, verb]) => new Click(p, who, verb));
    const drain = fc
        .tuple(fc.constantFrom(1 as const, 2 as const), fc.integer({ min: 1, max: 20 }))
        .map(([c, n]) => new Drain(c, n));
    const fault = fc
        .tuple(
            fc.constantFrom<FaultTarget>(
                'arm-put',
                'arm-put',
                'arm-get',
                'bot-post',
                'bot-post',
                'bot-update',
                'graph-membership',
            ),
            fc.constantFrom(
                'error' as const,
                'throttle' as const,
                'lost-answer' as const,
                'lost-answer' as const,
                'conflict' as const,
            ),
        )
        .map(([target, kind]) => new InjectFault(target, kind));
    return [
        event,
        event,
        event,
        clickOne,
        clickOne,
        pec.map((p) => new ConcurrentClicks(p)),
        drain,
        drain,
        pec.map((p) => new DuplicateMessage(p)),
        fc.constant(new Sweep()),
        fc
            .tuple(pec, fc.constantFrom('Approved' as const, 'Rejected' as const))
            .map(([p, status]) => new PortalDecision(p, status)),
        fault,
        fault,
        fault,
    ];
}

/** The request that answers for a PEC now (open, or the newest of this sequence). */
async function currentRequest(real: Real, pec: SeededPec): Promise<ApprovalRequest | undefined> {
    const active = await real.h.deps.requests.getActiveForPec(pec.pecId).catch(() => undefined);
    if (active) {
        return active.request;
    }
    const mine = (await requestsOf(real)).get(idKey(pec.pecId)) ?? [];
    return mine.sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
}

/** Every request by PEC, read straight from the table. */
async function requestsOf(real: Real): Promise<Map<string, ApprovalRequest[]>> {
    return patiently(async () => {
        const byPec = new Map<string, ApprovalRequest[]>();
        for await (const { request } of real.direct.requests.listRequests()) {
            const key = idKey(request.pecId);
            byPec.set(key, [...(byPec.get(key) ?? []), request]);
        }
        return byPec;
    });
}

function armStatus(real: Real, pecId: string): string | undefined {
    const pec = real.h.arm.getPec(pecId) as {
        properties?: { privateLinkServiceConnectionState?: { status?: string } };
    };
    return pec?.properties?.privateLinkServiceConnectionState?.status;
}

function armBusy(real: Real, pecId: string): boolean {
    const pec = real.h.arm.getPec(pecId) as { properties?: { provisioningState?: string } };
    return !['Ready', 'Succeeded', 'Failed', ''].includes(pec?.properties?.provisioningState ?? '');
}

async function queueEmpty(real: Real): Promise<boolean> {
    return patiently(async () => {
        await real.h.queue.createIfNotExists();
        const props = await real.h.queue.getProperties();
        return (props.approximateMessagesCount ?? 0) === 0;
    });
}

async function checkInvariants(model: Model, real: Real): Promise<void> {
    const { h } = real;
    const byPec = await requestsOf(real);
    const violations: string[] = [];
    const cardsByRequest = new Map<string, number>();
    for (const c of h.bot.conversations) {
        // A second card turned into a "duplicate card" note is no longer a place to decide; every card, with or
        // without buttons, shows "Request {id}".
        if (isNotedDuplicate(h, c.id)) {
            continue;
        }
        const posted = JSON.stringify(c.parameters.activity);
        const requestId =
            /"requestId":"([A-Za-z0-9_-]+)"/.exec(posted)?.[1] ?? /Request ([A-Za-z0-9_-]{16,})/.exec(posted)?.[1];
        if (requestId) {
            cardsByRequest.set(requestId, (cardsByRequest.get(requestId) ?? 0) + 1);
        }
    }
    const drained = await queueEmpty(real);
    for (const pec of model.pecs) {
        const mine = byPec.get(idKey(pec.pecId)) ?? [];
        for (const r of mine) {
            const cards = cardsByRequest.get(r.id) ?? 0;
            if (cards > 1) {
                violations.push(`request ${r.id} of ${pec.pecName} has ${cards} cards in the channel`);
            }
            const trail = await patiently(() => real.direct.audit.list(r.id));
            const broken = verifyChain(trail);
            if (broken.length > 0) {
                violations.push(`the audit chain of request ${r.id} does not verify: ${JSON.stringify(broken)}`);
            }
        }
        const commits = h.arm.commits.slice(real.commitsBefore).filter((c) => idKey(c.pecId) === idKey(pec.pecId));
        const changes = commits.filter((c) => c.from !== c.to);
        if (changes.length > 1) {
            violations.push(`ARM changed ${pec.pecName} ${changes.length} times: ${JSON.stringify(changes)}`);
        }
        const applied = mine.filter((r) => r.status === 'applied');
        if (applied.length > 1) {
            violations.push(`${pec.pecName} has ${applied.length} applied requests`);
        }
        if (drained) {
            const state = h.arm.getPec(pec.pecId) as
                | { properties?: { privateLinkServiceConnectionState?: { status?: string; description?: string } } }
                | undefined;
            const held = state?.properties?.privateLinkServiceConnectionState;
            for (const r of applied) {
                const d = r.decision;
                // A Keep on a provider that refuses a PUT repeating the status (Storage) leaves ARM's description as the
                // alert found it, by the documented rule (README, "Verified against"): the state is the decision's.
                const keptAsFound =
                    r.bypass !== undefined &&
                    refusesRepeatedStatus(pec.pecId) &&
                    held?.description === r.bypass.description;
                if (
                    d &&
                    (held?.status !== targetStatus(d.action) ||
                        (held.description !== armDescription(d) && !keptAsFound))
                ) {
                    violations.push(
                        `request ${r.id} is applied (${d.action}) but ARM holds ${held?.status} "${held?.description}"`,
                    );
                }
            }
        }
    }
    if (violations.length > 0) {
        throw new InvariantViolation(violations.join('; '));
    }
}

/** Whether the provider of this connection refuses a PUT that repeats its status (the emulator does as it does). */
function refusesRepeatedStatus(pecId: string): boolean {
    const m = /\/providers\/([^/]+)\/([^/]+)\//i.exec(pecId);
    const source = specSources.find(
        (s) => m && s.provider.toLowerCase() === m[1]?.toLowerCase() && s.type.toLowerCase() === m[2]?.toLowerCase(),
    );
    return source?.sameStatusRefused !== undefined;
}

/**
 * Runs `runs` generated command sequences (seeded) against the harness. The harness is shared: each sequence seeds its
 * own PECs and, at its end, drains the queue and removes them, so that later sweeps have little left to do.
 */
export async function runModel(h: Harness, options: ModelRunOptions): Promise<ModelReport> {
    const started = Date.now();
    const steps = { count: 0 };
    const counts: Record<string, number> = {};
    const pecCount = options.pecs ?? 3;
    let sequence = options.replay?.sequencesBefore ?? 0;
    let violations = 0;
    let counterexample: string | undefined;
    const realNow = h.deps.now;
    let hoursSoFar = 0;
    const clockAt = (hours: number) => () => new Date(realNow().getTime() + hours * hour);
    const direct = {
        requests: new TableRequestStore(lazyTable(h.config.REQUESTS_TABLE)),
        audit: new TableAuditLog(lazyTable(h.config.AUDIT_TABLE)),
    };
    try {
        await fc.assert(
            fc.asyncProperty(
                fc.commands(commandArbs(pecCount), { maxCommands: options.maxCommands, size: 'max' }),
                async (cmds) => {
                    if (steps.count >= options.steps) {
                        return;
                    }
                    sequence += 1;
                    const pecs = Array.from({ length: pecCount }, (_, i) =>
                        seedPendingPec(h.arm, serverKinds[(sequence + i) % serverKinds.length]!, {
                            serverName: `model-${options.seed}-${sequence}-${i}`,
                        }),
                    );
                    // The clock goes on from where the last sequence's sweeps moved it, never back: Teams stamps
                    // new threads with it, and a channel whose newest messages lie in the future is no channel.
                    h.deps.now = clockAt(hoursSoFar);
                    await h.queue.clearMessages().catch(() => undefined);
                    const real: Real = {
                        h,
                        direct,
                        hours: hoursSoFar,
                        steps,
                        counts,
                        commitsBefore: h.arm.commits.length,
                    };
                    try {
                        await fc.asyncModelRun(() => ({ model: { pecs, portal: new Set<number>() }, real }), cmds);
                    } finally {
                        h.arm.faults.clear();
                        h.bot.faults.clear();
                        h.graph.faults.clear();
                        hoursSoFar = real.hours;
                        h.deps.now = clockAt(hoursSoFar);
                        // Gone from ARM: a later sweep supersedes whatever of theirs is still open, and lists none of them.
                        for (const pec of pecs) {
                            h.arm.removeServer(pec.serverId);
                        }
                        await h.queue.clearMessages().catch(() => undefined);
                    }
                },
            ),
            {
                seed: options.seed,
                numRuns: options.steps,
                endOnFailure: true,
                ...(options.replay ? { path: options.replay.path } : {}),
            },
        );
    } catch (err) {
        // Only a broken invariant counts; anything else (the harness itself failing) is an error of the run.
        if (!(err instanceof Error && /invariant violated: /.test(`${err.message}${String(err.cause ?? '')}`))) {
            throw err;
        }
        violations = 1;
        const cause = err instanceof Error && err.cause instanceof Error ? `\n${err.cause.message}` : '';
        counterexample = err instanceof Error ? `${err.message}${cause}`.slice(0, 6000) : String(err);
        options.log?.(counterexample);
    } finally {
        h.deps.now = realNow;
    }
    return {
        seed: options.seed,
        runs: sequence,
        modelSteps: steps.count,
        modelViolations: violations,
        ...(counterexample ? { counterexample } : {}),
        commands: counts,
        elapsedMs: Date.now() - started,
    };
}

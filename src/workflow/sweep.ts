import { createHash, randomUUID } from 'node:crypto';
import { formatUtc } from '../domain/card';
import { hasApproved, isSelfDecision, outsideChange, showsOwnDecision } from '../domain/decision';
import { ConcurrencyError, ensureErrorType, isRetryable } from '../domain/errors';
import { idKey, parsePecId, serverKey, type ServerKind, type ServerRef } from '../domain/ids';
import { defaultWatchedKinds } from '../domain/resourceKinds';
import type { ListedServer } from '../arm/pecProvider';
import type { Pec, ServerContext } from '../domain/pec';
import { dueAction, expire, expiryReason, recordReminder } from '../domain/reconcile';
import {
    cardStateOf,
    expectedPecStatus,
    holdsPec,
    requiredApprovalsOf,
    transition,
    type ApprovalRequest,
} from '../domain/request';
import { currentTrace, withTrace } from '../observability/trace';
import type { StoredRequest } from '../storage/requestStore';
import { renderReminderCard, reminderSummary, type ReminderMention } from '../teams/reminderCard';
import { settleAll } from './concurrency';
import { syncPostedCard } from './cardUpdate';
import { staleReason, supersede } from './decide';
import type { WorkflowDeps } from './deps';
import type { Logger } from '../observability/logger';
import { ensureAlertCard, noteAppliedState, sweepApproved, type WatchedScope } from './bypass';
import { openAndAnnounce } from './onResourceEvent';
import { noteDuplicateCards, type PostOutcome } from './postCard';
import { updateRequest } from './requestUpdate';

/**
 * The timer's reconciliation: events get lost, approvers go quiet, admins click in the portal. Each run looks at ARM
 * and at every request in flight, and does what the events and clicks would have done:
 * - a Pending PEC with no request gets one, through the same path as an event (so a race gives one card);
 * - a pending request whose PEC was decided outside or removed is superseded;
 * - a decided request whose apply got lost is queued again;
 * - pending requests get their reminders, and expire with the configured default action;
 * - an expired request lets go of its PEC once the PEC is no longer Pending;
 * - a card that shows an older state than its request is updated.
 *
 * ARM is read with the list calls of the watched kinds (resources per subscription, then each one's PECs, unless the
 * subscription-wide list already carries them inline: then the cost grows with subscriptions and kinds, not with
 * resources), not Azure
 * Resource Graph: the list calls answer from the resource providers themselves, so a PEC approved a minute ago is
 * seen as approved, where Resource Graph's index can lag; they need no permission beyond the custom role's server
 * and PEC reads; and they are the calls the adapters, emulator and tests already cover.
 *
 * Every item is settled on its own: a failure is logged and reported, and the next run tries again.
 */

export interface SweepReport {
    correlationId: string;
    servers: number;
    pendingPecs: number;
    /** Pending PECs without a request, seen too recently: their own event (with the requester) may still come. */
    waiting: string[];
    opened: string[];
    cards: Record<string, PostOutcome>;
    superseded: string[];
    expired: string[];
    reminded: string[];
    requeued: string[];
    /** Failed requests whose decision ARM shows in place after all: now applied, with their audit entry. */
    recovered: string[];
    released: string[];
    cardsSynced: string[];
    /** Alerts and revokes opened for connections approved without the gate that no event reported. */
    bypasses: string[];
    /** Connections recorded as the baseline of newly watched subscriptions and kinds (never revoked). */
    baselined: string[];
    /** What failed, one line each; transient ones will be retried by the next run. */
    errors: { what: string; message: string; transient: boolean }[];
    /** Set when the sweep could not look at ARM or at the requests at all: the run did nothing useful. */
    blind: boolean;
    /**
     * Which watched scopes (subscription × kind, in order) this run listed: `from` up to `to` (exclusive) of `of`.
     * A run whose time budget ran out before the end stops there and the next run resumes at `to`; `finished` says
     * this run reached the end of the pass (the next one starts again at the first scope).
     */
    scopes: { from: number; to: number; of: number; finished: boolean };
}

/** Options of one run. */
export interface SweepOptions {
    /**
     * How long the run keeps starting the listing of further scopes (default `sweepTimeBudgetMs`). At least one scope
     * is listed per run, so a pass always moves on. Only with a checkpoint store (deps.sweepCheckpoints): without
     * one every run lists every scope, or the last scopes would never be looked at.
     */
    budgetMs?: number;
}

/**
 * Parallel ARM reads per sweep: enough to hide latency, few enough to stay far from ARM's read throttling (a bucket of
 * 250 reads per subscription, refilled at 25 a second): the scopes are listed subscription by subscription, so at most
 * this many reads of one subscription are in flight, and a pass spends about kinds + pages reads per subscription.
 */
const armConcurrency = 4;
/**
 * How long one timer run keeps listing further scopes before it leaves the rest to the next run (from a checkpoint).
 * Well inside the 5 minutes a Consumption plan gives a function by default (Flex Consumption: 30), with room for the
 * work on what was listed; at ~100 listed pages a second that is tens of thousands of pages per run.
 */
export const sweepTimeBudgetMs = 3 * 60_000;
/** Requests handled at once. */
const requestConcurrency = 4;
/** Mentions per reminder: a reminder that pages a whole department is one nobody reads. */
const maxMentions = 20;
/**
 * How long a Pending PEC without a request waits for its own event before the sweep opens it. The event names the
 * requester (for the self-approval rule, and for the policy's judgement of where the endpoint comes from); the sweep
 * cannot, so it only steps in for events that are really lost, not merely slower than the timer.
 */
export const sweepGraceMs = 10 * 60_000;

/** The custom event every completed sweep run sends (Application Insights `customEvents`, name `SweepCompleted`). */
export const sweepCompletedEvent = 'SweepCompleted';

export async function sweep(deps: WorkflowDeps, log: Logger, options: SweepOptions = {}): Promise<SweepReport> {
    const correlationId = randomUUID();
    return withTrace({ correlationId }, () => sweepRun(deps, correlationId, log, options));
}

async function sweepRun(
    deps: WorkflowDeps,
    correlationId: string,
    log: Logger,
    options: SweepOptions,
): Promise<SweepReport> {
    const report: SweepReport = {
        correlationId,
        servers: 0,
        pendingPecs: 0,
        waiting: [],
        opened: [],
        cards: {},
        superseded: [],
        expired: [],
        reminded: [],
        requeued: [],
        recovered: [],
        released: [],
        cardsSynced: [],
        bypasses: [],
        baselined: [],
        errors: [],
        blind: false,
        scopes: { from: 0, to: 0, of: 0, finished: true },
    };
    const failed = (what: string, err: unknown) => {
        const e = ensureErrorType(err);
        report.errors.push({ what, message: e.message, transient: isRetryable(e) });
        log.warn(`Sweep ${report.correlationId}: ${what} failed: ${e.message}`);
    };

    // A deployment that finds rows of an older table layout brings them up to date before it relies on them.
    try {
        const migration = await deps.requests.migrateLayout?.();
        if (migration && migration.rewritten + (migration.to - migration.from) > 0) {
            log.info(
                `Sweep ${report.correlationId}: request table migrated from layout ${migration.from} to ${migration.to} ` +
                    `(${migration.rewritten} row(s) rewritten)`,
            );
        }
    } catch (err) {
        failed('migrate the request table layout', err);
    }
    const seen = await discover(deps, report, failed, log, options.budgetMs ?? sweepTimeBudgetMs);
    await openMissing(deps, seen, report, failed, log);
    await reconcileRequests(deps, seen, report, failed, log);
    // Last, so that a request superseded above by an approval outside is judged as the bypass it is.
    const approved = await sweepApproved(deps, seen.scopes, report.correlationId, log);
    report.bypasses.push(...approved.bypasses);
    report.baselined.push(...approved.baselined);
    approved.errors.forEach((e) => failed(e.what, e.error));
    if (deps.anchorAudit) {
        try {
            const { anchored } = await deps.anchorAudit(deps.now());
            if (anchored > 0) {
                log.warn(`Sweep ${report.correlationId}: anchored ${anchored} audit chain head(s) that lagged`);
            }
        } catch (err) {
            failed('audit anchors', err);
        }
    }

    const permanent = report.errors.filter((e) => !e.transient);
    if (permanent.length > 0) {
        log.error(
            `ALERT sweep ${report.correlationId}: ${permanent.length} item(s) failed and will not fix themselves: ` +
                permanent.map((e) => `${e.what}: ${e.message}`).join('; '),
        );
    }
    // The signal the "sweep has not completed within two schedules" alert looks for: a custom event (not sampled, see
    // host.json) sent whenever a run got through; a blind run (nothing could be read) sends none and fails its
    // invocation instead.
    if (!report.blind) {
        deps.telemetry.trackEvent({
            name: sweepCompletedEvent,
            time: deps.now(),
            properties: {
                requestId: '',
                correlationId: report.correlationId,
                blind: String(report.blind),
                servers: String(report.servers),
                errors: String(report.errors.length),
                recovered: String(report.recovered.length),
                scopes: `${report.scopes.from}-${report.scopes.to}/${report.scopes.of}`,
            },
            trace: { ...currentTrace(), correlationId: report.correlationId },
        });
    }
    log.info(
        `Sweep ${report.correlationId}: ${report.servers} servers, ${report.pendingPecs} pending PECs ` +
            `(${report.waiting.length} waiting for their event); opened ` +
            `${report.opened.length}, superseded ${report.superseded.length}, expired ${report.expired.length}, ` +
            `reminded ${report.reminded.length}, re-queued ${report.requeued.length}, recovered ` +
            `${report.recovered.length}, released ${report.released.length}, cards synced ` +
            `${report.cardsSynced.length}, bypasses ${report.bypasses.length}, baselined ${report.baselined.length}, ` +
            `errors ${report.errors.length}; scopes ${report.scopes.from}–${report.scopes.to} of ${report.scopes.of}` +
            (report.scopes.finished ? '' : ' (time budget spent: the next run resumes there)'),
    );
    return report;
}

/** What ARM said in this run: each listed server's PECs, by PEC id; servers whose listing failed are absent. */
interface Seen {
    servers: Map<string, { server: ServerRef; pecs: Pec[] }>;
    pecs: Map<string, Pec>;
    /** The subscriptions and kinds seen in full: listed, and every server's PECs listed. */
    scopes: WatchedScope[];
}

async function discover(
    deps: WorkflowDeps,
    report: SweepReport,
    failed: (what: string, err: unknown) => void,
    log: Logger,
    budgetMs: number,
): Promise<Seen> {
    const kinds = deps.settings.watchedKinds ?? defaultWatchedKinds;
    const all = deps.settings.watchedSubscriptionIds.flatMap((subscriptionId) =>
        kinds.map((kind): [string, ServerKind] => [subscriptionId, kind]),
    );
    const pass = await passStart(deps, all, report, failed, log);
    const listedAt = deps.now().toISOString();
    const started = performance.now();
    const scopes: [string, ServerKind][] = [];
    const listed = await settleAll(all.slice(pass.from), armConcurrency, async (scope): Promise<ListedServer[]> => {
        // Stop starting new scopes once the budget is spent (the first is always listed, so a pass moves on).
        if (pass.store && scopes.length > 0 && performance.now() - started > budgetMs) {
            throw stopped;
        }
        scopes.push(scope);
        const [subscriptionId, kind] = scope;
        return deps.arm.listServersWithPecs
            ? deps.arm.listServersWithPecs(subscriptionId, kind)
            : (await deps.arm.listServers(subscriptionId, kind)).map((server) => ({ server }));
    }).then((results) => results.slice(0, scopes.length));
    // Scopes are taken in order, so the listed ones are the first `scopes.length` from `pass.from`.
    report.scopes = {
        from: pass.from,
        to: pass.from + scopes.length,
        of: all.length,
        finished: pass.from + scopes.length >= all.length,
    };
    await passEnd(deps, pass, report, failed);
    const found: ListedServer[] = [];
    listed.forEach((result, i) => {
        const [subscriptionId, kind] = scopes[i] ?? ['?', '?'];
        if (result.status === 'fulfilled') {
            found.push(...result.value);
        } else {
            failed(`list ${kind} servers in subscription ${subscriptionId}`, result.reason);
        }
    });
    report.servers = found.length;
    if (scopes.length > 0 && listed.every((r) => r.status === 'rejected')) {
        report.blind = true;
    }

    const seen: Seen = { servers: new Map(), pecs: new Map(), scopes: [] };
    const servers: ServerRef[] = found.map((f) => f.server);
    // PECs the list carried inline need no call of their own.
    const pecLists = await settleAll(
        found,
        armConcurrency,
        async ({ server, pecs }) => pecs ?? deps.arm.listPecs(server),
    );
    pecLists.forEach((result, i) => {
        const server = servers[i];
        if (!server) {
            return;
        }
        if (result.status === 'rejected') {
            failed(`list the PECs of ${server.name}`, result.reason);
            return;
        }
        seen.servers.set(serverKey(server), { server, pecs: result.value });
        for (const pec of result.value) {
            seen.pecs.set(idKey(pec.id), pec);
        }
    });
    listed.forEach((result, i) => {
        const [subscriptionId, kind] = scopes[i] ?? ['?', '?'];
        if (result.status !== 'fulfilled') {
            return;
        }
        const complete = result.value.map(({ server }) => seen.servers.get(serverKey(server)));
        if (complete.every((entry) => entry !== undefined)) {
            seen.scopes.push({
                subscriptionId,
                kind,
                servers: complete.filter((entry) => entry !== undefined),
                listedAt,
            });
        }
    });
    return seen;
}

/** Thrown (never seen outside) for the scopes a run leaves to the next one. */
const stopped = new Error('sweep time budget spent');

interface Pass {
    /** The first scope this run lists. */
    from: number;
    fingerprint: string;
    passStartedAt: string;
    store?: NonNullable<WorkflowDeps['sweepCheckpoints']>;
    /** A row is stored (resumed from, or unusable): a finished pass removes it. */
    stored?: boolean;
}

/** Which scopes and in which order: a checkpoint counts in one list, and is ignored for any other. */
function fingerprintOf(scopes: readonly [string, ServerKind][]): string {
    return createHash('sha256')
        .update(JSON.stringify(scopes.map(([s, k]) => [s.toLowerCase(), k])))
        .digest('hex');
}

/** Where this run starts: where the last run stopped, or (a finished pass, none, another scope list) the first scope. */
async function passStart(
    deps: WorkflowDeps,
    scopes: readonly [string, ServerKind][],
    report: SweepReport,
    failed: (what: string, err: unknown) => void,
    log: Logger,
): Promise<Pass> {
    const fingerprint = fingerprintOf(scopes);
    const fresh: Pass = { from: 0, fingerprint, passStartedAt: deps.now().toISOString() };
    const store = deps.sweepCheckpoints;
    if (!store) {
        return fresh;
    }
    try {
        const loaded = await store.load();
        if ('corrupt' in loaded) {
            log.warn(
                `Sweep ${report.correlationId}: the stored checkpoint is unusable (${loaded.corrupt}); ignored, a new pass starts`,
            );
            return { ...fresh, store, stored: true };
        }
        const checkpoint = loaded.checkpoint;
        if (checkpoint && checkpoint.scopes === fingerprint && checkpoint.next < scopes.length) {
            log.info(
                `Sweep ${report.correlationId}: resuming the pass begun ${checkpoint.passStartedAt} at scope ` +
                    `${checkpoint.next} of ${scopes.length}`,
            );
            return { from: checkpoint.next, fingerprint, passStartedAt: checkpoint.passStartedAt, store, stored: true };
        }
        if (checkpoint) {
            return { ...fresh, store, stored: true };
        }
    } catch (err) {
        // Unreadable now: this run starts a pass of its own (more reads, nothing missed).
        failed('read the sweep checkpoint', err);
    }
    return { ...fresh, store };
}

/** Records where the next run resumes, or that the pass is complete. */
async function passEnd(
    deps: WorkflowDeps,
    pass: Pass,
    report: SweepReport,
    failed: (what: string, err: unknown) => void,
): Promise<void> {
    if (!pass.store) {
        return;
    }
    try {
        if (report.scopes.finished) {
            // A pass done in one run (the usual case) had no row to remove: no storage call.
            if (pass.stored) {
                await pass.store.clear();
            }
        } else {
            await pass.store.save({
                scopes: pass.fingerprint,
                next: report.scopes.to,
                passStartedAt: pass.passStartedAt,
                updatedAt: deps.now().toISOString(),
            });
        }
    } catch (err) {
        // The next run then starts over (or repeats a slice): more reads, nothing missed.
        failed('write the sweep checkpoint', err);
    }
}

/** A request for every Pending PEC that has none: the same path as an event, so a racing event gives one card. */
async function openMissing(
    deps: WorkflowDeps,
    seen: Seen,
    report: SweepReport,
    failed: (what: string, err: unknown) => void,
    log: Logger,
): Promise<void> {
    const work: { pec: Pec; context: () => Promise<ServerContext> }[] = [];
    for (const { server, pecs } of seen.servers.values()) {
        let context: Promise<ServerContext> | undefined;
        const serverContext = () => (context ??= deps.arm.getServerContext(server, pecs));
        for (const pec of pecs.filter((p) => p.status === 'Pending')) {
            work.push({ pec, context: serverContext });
        }
    }
    report.pendingPecs = work.length;
    const now = deps.now();
    const mayOpen = (pec: Pec) => async () => {
        const since = await deps.requests.firstSeenPending(pec.id, now);
        if (now.getTime() - since.getTime() < sweepGraceMs) {
            report.waiting.push(pec.id);
            return false;
        }
        // The listing may be minutes old by now: a PEC decided and applied meanwhile must not get a new request.
        return (await deps.arm.getPec(pec.ref))?.status === 'Pending';
    };
    const results = await settleAll(work, requestConcurrency, ({ pec, context }) =>
        // A PEC found by the sweep has no requester: the event that named one was lost.
        openAndAnnounce(deps, pec, context, undefined, report.correlationId, log, mayOpen(pec)),
    );
    results.forEach((result, i) => {
        const pec = work[i]?.pec;
        if (result.status === 'rejected') {
            failed(`open a request for ${pec?.id ?? '?'}`, result.reason);
            return;
        }
        if (!result.value) {
            return;
        }
        if (result.value.created) {
            report.opened.push(result.value.requestId);
        }
        report.cards[result.value.requestId] = result.value.card;
    });
}

async function reconcileRequests(
    deps: WorkflowDeps,
    seen: Seen,
    report: SweepReport,
    failed: (what: string, err: unknown) => void,
    log: Logger,
): Promise<void> {
    const requests: StoredRequest[] = [];
    try {
        for await (const stored of deps.requests.listForSweep()) {
            requests.push(stored);
        }
    } catch (err) {
        failed('list the requests in flight', err);
        report.blind = true;
    }
    const results = await settleAll(requests, requestConcurrency, (stored) =>
        withTrace({ requestId: stored.request.id, correlationId: stored.request.correlationId }, () =>
            reconcileOne(deps, seen, stored, report, log),
        ),
    );
    results.forEach((result, i) => {
        if (result.status === 'rejected') {
            failed(`reconcile request ${requests[i]?.request.id ?? '?'}`, result.reason);
        }
    });
}

async function reconcileOne(
    deps: WorkflowDeps,
    seen: Seen,
    stored: StoredRequest,
    report: SweepReport,
    log: Logger,
): Promise<void> {
    if (stored.request.cardDuplicateCheckSince) {
        stored = await noteDuplicateCards(deps, stored, log);
    }
    const request = stored.request;
    if (request.status === 'failed') {
        const recovered = await recheckFailed(deps, stored, log);
        if (recovered) {
            report.recovered.push(request.id);
        }
        return syncIfBehind(deps, recovered ?? stored, report, log);
    }
    if (holdsPec(request) && request.status !== 'decided') {
        // A decided request is left to its apply, which re-reads the PEC itself: ARM showing our own approval before
        // the request says applied is not an outside change.
        const outside = await outsideNow(deps, seen, request);
        if (request.status === 'expired') {
            if (outside) {
                const released = await release(deps, stored, outside);
                if (!released) {
                    return;
                }
                report.released.push(request.id);
                return syncIfBehind(deps, released, report, log);
            }
            return syncIfBehind(deps, stored, report, log);
        }
        if (outside) {
            const after = await supersede(deps, stored, outside, log);
            if (after.request.status === 'superseded') {
                report.superseded.push(request.id);
            }
            return;
        }
    }
    const now = deps.now();
    switch (dueAction(request, now, deps.settings.reconcile)) {
        case 'expire':
            if (await expireRequest(deps, stored, log)) {
                report.expired.push(request.id);
            }
            return;
        case 'remind':
            if (await remind(deps, stored, log)) {
                report.reminded.push(request.id);
            }
            return;
        case 'requeue':
            if (await requeue(deps, stored)) {
                report.requeued.push(request.id);
            }
            return;
        default:
            if (request.bypass && !request.card) {
                await ensureAlertCard(deps, stored, log);
                return;
            }
            return syncIfBehind(deps, stored, report, log);
    }
}

/**
 * What ARM says happened to the PEC outside this app, or undefined while it is Pending. The listing is only a hint:
 * it was taken before the requests were read, so a request opened meanwhile for a PEC created meanwhile is missing
 * from it. Before anything is superseded or released, the PEC is read again.
 */
async function outsideNow(deps: WorkflowDeps, seen: Seen, request: ApprovalRequest): Promise<string | undefined> {
    const { pecId } = request;
    const expected = expectedPecStatus(request);
    const endpoint = request.facts.privateEndpointId;
    if (seen.servers.has(serverKey(parsePecId(pecId).server))) {
        const listed = seen.pecs.get(idKey(pecId));
        if (listed && !outsideChange(listed, expected, endpoint)) {
            return undefined;
        }
    }
    return staleReason(deps, pecId, expected, endpoint);
}

/** Updates a card that shows an older state, from the request as it is now (the listed copy may be out of date). */
async function syncIfBehind(deps: WorkflowDeps, stored: StoredRequest, report: SweepReport, log: Logger) {
    if (!stored.request.card || stored.request.cardShows === cardStateOf(stored.request)) {
        return;
    }
    const fresh = await deps.requests.get(stored.request.id);
    if (!fresh?.request.card || fresh.request.cardShows === cardStateOf(fresh.request)) {
        return;
    }
    const synced = await syncPostedCard(deps, fresh, log);
    if (synced.request.cardShows === cardStateOf(synced.request)) {
        report.cardsSynced.push(fresh.request.id);
    }
}

/** Expiry's default action: leave (the request closes, the PEC stays Pending) or an automatic reject through ARM. */
async function expireRequest(deps: WorkflowDeps, stored: StoredRequest, log: Logger): Promise<boolean> {
    // An alert about a connection approved without the gate is never revoked by the clock: the connection may be in
    // production use, and a person decides (a bypass rule may revoke on arrival, never on expiry).
    const settings: typeof deps.settings.reconcile = stored.request.bypass
        ? { ...deps.settings.reconcile, expiryAction: 'leave' }
        : deps.settings.reconcile;
    const now = deps.now();
    const written = await updateRequest(deps.requests, stored, (current) =>
        current.status === 'pending' && dueAction(current, now, settings) === 'expire'
            ? expire(current, now, settings)
            : undefined,
    );
    if (!written?.changed) {
        return false;
    }
    const request = written.stored.request;
    await deps.audit.append({
        requestId: request.id,
        action: 'expired',
        actor: { kind: 'system' },
        correlationId: request.correlationId,
        before: { status: 'pending' },
        after: { status: request.status, defaultAction: settings.expiryAction },
        ...(request.decision?.text ? { text: request.decision.text } : {}),
        detail: expiryReason(settings),
    });
    await syncPostedCard(deps, written.stored, log).catch((err: unknown) => {
        log.warn(`Card of request ${request.id} not updated on expiry: ${ensureErrorType(err).message}`);
    });
    if (request.status === 'decided') {
        await deps.applyQueue.send({ requestId: request.id, correlationId: request.correlationId });
    }
    return true;
}

/** How long the sweep keeps comparing a failed request with ARM before it leaves it to an operator. */
export const failedRecheckMs = 7 * 24 * 3_600_000;

/**
 * A failed request may have failed only in its last step: the PUT worked (ARM shows the decision) but recording it did
 * not, or the last attempt ran out of time while ARM finished. The sweep reads the PEC and, when it shows this
 * decision's state (with its description, or moved there from the state the request found), makes the request applied
 * with its audit entry and updates the card. A PEC that
 * shows something else, or is gone, or a failure older than the window, ends the re-check (the `ALERT` stands).
 * Resolves with the request once recovered.
 */
async function recheckFailed(
    deps: WorkflowDeps,
    stored: StoredRequest,
    log: Logger,
): Promise<StoredRequest | undefined> {
    const request = stored.request;
    const decision = request.decision;
    const now = deps.now();
    const pec = decision ? await deps.arm.getPec(parsePecId(request.pecId)) : undefined;
    if (!decision || !pec || !showsOwnDecision(request, pec)) {
        const failedAt = Date.parse(request.outcome?.at ?? request.updatedAt);
        // Still as the request found it (Pending, or Approved for a bypass alert): the PUT may yet show up.
        if (pec?.status === expectedPecStatus(request) && now.getTime() - failedAt < failedRecheckMs) {
            return undefined;
        }
        await updateRequest(deps.requests, stored, (current) =>
            current.status === 'failed' && !current.recheckedUntil
                ? { ...current, recheckedUntil: now.toISOString() }
                : undefined,
        );
        return undefined;
    }
    // The approval ARM holds is the gate's: marked as such before the request says applied (an applied request is not
    // re-checked, so a mark missed after it would be missed for good), or the bypass pass below, this sweep's or a
    // later one's, would report the gate's own approval as one made without it.
    await noteAppliedState(deps, request, pec);
    const written = await updateRequest(deps.requests, stored, (current) =>
        current.status === 'failed' ? transition(current, { type: 'recover' }, now) : undefined,
    );
    if (!written?.changed) {
        return undefined;
    }
    // The trail says applied after its last failure; an `applied` entry written before a failed mark already does.
    const trail = await deps.audit.list(request.id);
    const lastFailed = trail.map((e) => e.action).lastIndexOf('failed');
    if (!trail.slice(lastFailed + 1).some((e) => e.action === 'applied')) {
        await deps.audit.append({
            requestId: request.id,
            action: 'applied',
            actor: { kind: 'system' },
            correlationId: request.correlationId,
            before: { status: 'failed' },
            after: { status: pec.status, description: pec.description, provisioningState: pec.provisioningState },
            ...(decision.text ? { text: decision.text } : {}),
            detail: `found applied in ARM by the sweep after the apply was recorded as failed (${request.outcome?.reason ?? '?'})`,
        });
    }
    log.info(`Sweep: request ${request.id} was failed but ARM shows its decision applied; now applied`);
    return written.stored;
}

/**
 * A reply in the card's thread that mentions the approvers who can still act. The count is written before the reply
 * is sent, so "at most N reminders" holds even when a send fails (that reminder is then lost, not repeated).
 */
async function remind(deps: WorkflowDeps, stored: StoredRequest, log: Logger): Promise<boolean> {
    const teams = deps.teams;
    const card = stored.request.card;
    if (!teams || card?.channel !== 'bot') {
        return false;
    }
    const now = deps.now();
    const written = await updateRequest(deps.requests, stored, (current) =>
        current.status === 'pending' && dueAction(current, now, deps.settings.reconcile) === 'remind'
            ? recordReminder(current, now)
            : undefined,
    );
    if (!written?.changed) {
        return false;
    }
    const request = written.stored.request;
    const mentions = await approversToMention(deps, request, log);
    const required = requiredApprovalsOf(request);
    const given = request.approvals ?? [];
    const input = {
        // The card and its summary add "has been waiting for a decision since …" themselves.
        title: `Private endpoint connection ${request.facts.pecName} on ${parsePecId(request.pecId).server.name}`,
        waitingSince: formatUtc(request.createdAt),
        reminderNumber: request.reminders?.count ?? 1,
        maxReminders: deps.settings.reconcile.reminderMaxCount,
        mentions,
        ...(required > 1
            ? {
                  note: `Needs ${required} approvals; ${given.length} so far${
                      given.length > 0 ? ` (${given.map((a) => a.by.name ?? a.by.upn ?? 'unknown').join(', ')})` : ''
                  }.`,
              }
            : {}),
    };
    await teams.replyCard(card, renderReminderCard(input), reminderSummary(input));
    await deps.audit.append({
        requestId: request.id,
        action: 'reminded',
        actor: { kind: 'system' },
        correlationId: request.correlationId,
        detail: `reminder ${input.reminderNumber} of ${input.maxReminders}; mentioned ${mentions.length} approver(s)`,
    });
    return true;
}

/** The approvers who can still act: not the requester, not someone who already approved. None if Graph fails. */
async function approversToMention(
    deps: WorkflowDeps,
    request: ApprovalRequest,
    log: Logger,
): Promise<ReminderMention[]> {
    try {
        const users = await deps.directory.listApprovers(deps.settings.approverGroupIds, maxMentions * 2);
        return users
            .map((u) => ({
                person: { objectId: u.objectId, ...(u.userPrincipalName ? { upn: u.userPrincipalName } : {}) },
                name: u.displayName ?? u.userPrincipalName ?? u.objectId,
            }))
            .filter(({ person }) => !isSelfDecision(request, person) && !hasApproved(request, person))
            .slice(0, maxMentions)
            .map(({ person, name }) => ({ id: person.objectId, name }));
    } catch (err) {
        // A reminder without names still reaches the channel; a Graph outage must not silence it.
        log.warn(`Reminder for request ${request.id}: approvers not listed: ${ensureErrorType(err).message}`);
        return [];
    }
}

async function requeue(deps: WorkflowDeps, stored: StoredRequest): Promise<boolean> {
    const now = deps.now();
    const written = await updateRequest(deps.requests, stored, (current) =>
        current.status === 'decided' && dueAction(current, now, deps.settings.reconcile) === 'requeue'
            ? { ...current, requeuedAt: now.toISOString() }
            : undefined,
    );
    if (!written?.changed) {
        return false;
    }
    const request = written.stored.request;
    await deps.applyQueue.send({ requestId: request.id, correlationId: request.correlationId });
    await deps.audit.append({
        requestId: request.id,
        action: 'requeued',
        actor: { kind: 'system' },
        correlationId: request.correlationId,
        detail: `decided at ${request.decision?.at ?? '?'} and not applied after ${deps.settings.reconcile.stuckApplyMinutes} minutes`,
    });
    return true;
}

/** An expired request whose PEC is no longer Pending stops holding it, so a new Pending state gets a new request. */
async function release(deps: WorkflowDeps, stored: StoredRequest, outside: string): Promise<StoredRequest | undefined> {
    let released: StoredRequest;
    try {
        released = await deps.requests.releasePec(stored, deps.now());
    } catch (err) {
        if (err instanceof ConcurrencyError) {
            // Someone changed the request since it was listed; the next run looks again.
            return undefined;
        }
        throw err;
    }
    await deps.audit.append({
        requestId: stored.request.id,
        action: 'released',
        actor: { kind: 'system' },
        correlationId: stored.request.correlationId,
        detail: outside,
    });
    return released;
}

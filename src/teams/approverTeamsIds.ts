import { REFRESH_USER_IDS_MAX } from '../domain/card';
import { ensureErrorType } from '../domain/errors';
import type { Logger } from '../observability/logger';
import type { ApproverDirectory } from './directory';
import type { TeamRoster } from './teamRoster';

/**
 * The approvers as Teams names them, for a card's `refresh.userIds`: the Entra transitive members of the approver
 * groups (Graph) matched with the team's roster (Bot Connector paged members), which holds each member's Teams user id
 * (MRI, `29:…`) next to their Entra object id. Teams refreshes a card automatically only for the MRIs listed there, so
 * those approvers see their own view with the buttons as soon as they look at the channel.
 *
 * The answer is cached briefly (group and team changes reach the cards within `ttlMs`), and a failed lookup is
 * remembered for `failureTtlMs`, so a Graph or Teams outage costs one slow lookup, not one per card. A caller never
 * waits longer than `deadlineMs`: the lookup goes on in the background and fills the cache for the next card.
 */

export { REFRESH_USER_IDS_MAX };

export interface TeamsApprover {
    /** The Teams user id (MRI). */
    mri: string;
    /** The Entra object id, lower case. */
    objectId: string;
}

export interface ApproverTeamsIdsOptions {
    groupIds: readonly string[];
    /** How long a found list is kept. Default 5 minutes, as the directory's membership answers. */
    ttlMs?: number;
    /** How long a failed lookup is remembered before the next one is tried. Default 1 minute. */
    failureTtlMs?: number;
    /** The longest a caller waits for a lookup; past it the card goes out without the list. Default 5 s. */
    deadlineMs?: number;
    /** The most approvers read from Graph; a group larger than that is cut (and logged). Default 5000. */
    maxApprovers?: number;
    /** The most roster pages read (500 members each). Default 50, a team of 25,000: Teams' own team size limit. */
    maxRosterPages?: number;
    now?: () => Date;
}

type Lookup = { ok: true; approvers: TeamsApprover[] } | { ok: false; error: Error };

export class ApproverTeamsIds {
    private readonly ttlMs: number;
    private readonly failureTtlMs: number;
    private readonly deadlineMs: number;
    private readonly maxApprovers: number;
    private readonly maxRosterPages: number;
    private readonly now: () => number;
    private cached: { value: Lookup; expiresAt: number } | undefined;
    private inFlight: Promise<Lookup> | undefined;

    constructor(
        private readonly directory: ApproverDirectory,
        private readonly roster: TeamRoster,
        private readonly options: ApproverTeamsIdsOptions,
    ) {
        this.ttlMs = options.ttlMs ?? 5 * 60_000;
        this.failureTtlMs = options.failureTtlMs ?? 60_000;
        this.deadlineMs = options.deadlineMs ?? 5_000;
        this.maxApprovers = options.maxApprovers ?? 5000;
        this.maxRosterPages = options.maxRosterPages ?? 50;
        const now = options.now ?? (() => new Date());
        this.now = () => now().getTime();
    }

    /**
     * The approvers who are members of the team, in the directory's order (by display name), all of them: the caller
     * picks the ones a card names. Undefined when they cannot be known now (Graph or Teams failing, or slower than the
     * deadline); the reason is logged. Never throws: a card must go out whether or not this is known.
     */
    async approvers(log: Logger): Promise<TeamsApprover[] | undefined> {
        const lookup = await this.lookupWithin(this.deadlineMs);
        if (lookup === 'late') {
            log.warn(
                `The approvers' Teams ids took longer than ${this.deadlineMs} ms to look up; this card refreshes per ` +
                    'user without them (the lookup goes on for the next card)',
            );
            return undefined;
        }
        if (!lookup.ok) {
            log.warn(`Could not look up the approvers' Teams ids: ${lookup.error.message}`);
            return undefined;
        }
        return lookup.approvers.map((a) => ({ ...a }));
    }

    /**
     * Starts a lookup when none is cached or on the way, without waiting for it: a path that will likely post a card
     * calls this first, so Graph and the roster answer while it waits on ARM and storage instead of after them.
     */
    prefetch(): void {
        void this.started();
    }

    /** The cached answer, or the lookup on the way (started if none is). Never rejects. */
    private started(): Lookup | Promise<Lookup> {
        const hit = this.cached;
        if (hit && hit.expiresAt > this.now()) {
            return hit.value;
        }
        this.inFlight ??= this.lookup().then((value) => {
            this.cached = { value, expiresAt: this.now() + (value.ok ? this.ttlMs : this.failureTtlMs) };
            this.inFlight = undefined;
            return value;
        });
        return this.inFlight;
    }

    private lookupWithin(ms: number): Promise<Lookup | 'late'> {
        const pending = this.started();
        if (!(pending instanceof Promise)) {
            return Promise.resolve(pending);
        }
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => {
            timer = setTimeout(() => resolve('late'), ms);
            // A lookup in the background must not keep a finished invocation's process alive.
            timer.unref();
        });
        return Promise.race([pending, late]).finally(() => clearTimeout(timer));
    }

    private async lookup(): Promise<Lookup> {
        try {
            return { ok: true, approvers: await this.match() };
        } catch (err) {
            return { ok: false, error: ensureErrorType(err) };
        }
    }

    private async match(): Promise<TeamsApprover[]> {
        const users = await this.directory.listApprovers(this.options.groupIds, this.maxApprovers);
        // The directory's order (display name, then id), so which approvers make a capped list does not depend on
        // the order Teams pages its roster in.
        const rank = new Map(users.map((u, i) => [u.objectId.toLowerCase(), i]));
        const found = new Map<string, TeamsApprover>();
        let token: string | undefined;
        for (let page = 0; page < this.maxRosterPages && rank.size > found.size; page++) {
            const answer = await this.roster.membersPage(token);
            for (const member of answer.members) {
                if (member.objectId && rank.has(member.objectId) && !found.has(member.objectId)) {
                    found.set(member.objectId, { mri: member.mri, objectId: member.objectId });
                }
            }
            token = answer.continuationToken;
            if (token === undefined) {
                break;
            }
        }
        return [...found.values()].sort((a, b) => (rank.get(a.objectId) ?? 0) - (rank.get(b.objectId) ?? 0));
    }
}

/**
 * The MRIs a request's card names in `refresh.userIds`: the approvers who can still act on it (not its requester when
 * self-approval is off, not whoever already approved it), at most REFRESH_USER_IDS_MAX. `left` counts those who did not
 * fit; they still get the buttons through the card's manual refresh or the review page.
 */
export function refreshUserIdsFor(
    approvers: readonly TeamsApprover[],
    exclude: readonly (string | undefined)[],
): { userIds: string[]; left: number } {
    const excluded = new Set(exclude.filter((id): id is string => !!id).map((id) => id.toLowerCase()));
    const eligible = approvers.filter((a) => !excluded.has(a.objectId));
    // Teams refreshes automatically for at most 60 users of one card; a longer list is not honoured.
    const userIds = eligible.slice(0, REFRESH_USER_IDS_MAX).map((a) => a.mri);
    return { userIds, left: eligible.length - userIds.length };
}

/**
 * The composition root's hook: the Bot Connector client both posts the cards and reads the team's roster, so the
 * lookup is built with it.
 */
export function withApproverTeamsIds<T extends TeamRoster>(
    channel: T,
    directory: ApproverDirectory,
    groupIds: readonly string[],
): { teams: T; approverTeamsIds: ApproverTeamsIds } {
    return { teams: channel, approverTeamsIds: new ApproverTeamsIds(directory, channel, { groupIds }) };
}

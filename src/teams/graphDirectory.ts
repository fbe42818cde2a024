import type { TokenCredential } from '@azure/core-auth';
import type { Client, RetryHandlerOptions, ShouldRetry } from '@microsoft/microsoft-graph-client';
import {
    ConfigError,
    ensureErrorType,
    isTransientStatus,
    PermanentError,
    statusCodeOf,
    TransientError,
    ValidationError,
} from '../domain/errors';
import { sharedTimeoutHttpClient } from '../http/timeout';
import { checkListLimit, compareDirectoryUsers, type ApproverDirectory, type DirectoryUser } from './directory';
import { graphMiddleware } from './graphHttp';

export interface GraphRetryOptions {
    /** Retries of a 429/503/504 (the only statuses graph-client retries). Default 2. */
    maxRetries?: number;
    /** The wait before a retry when Graph sends no Retry-After, in seconds; graph-client adds its own backoff. Default 1. */
    delaySeconds?: number;
    /** A longer Retry-After fails the call at once (as a TransientError) instead of sleeping through it. Default 5. */
    maxRetryAfterSeconds?: number;
}

export interface GraphDirectoryOptions {
    /** The Graph root, e.g. https://graph.microsoft.com (or a national cloud's). Must be https. */
    endpoint: string;
    credential: TokenCredential;
    /** How long an answer is kept: membership, a found user, and an approver list. Default 5 minutes. */
    cacheTtlMs?: number;
    /** How long a "no" is kept (not a member, no such user), so a newly added approver waits at most this. Default 60 s. */
    negativeCacheTtlMs?: number;
    now?: () => Date;
    retry?: GraphRetryOptions;
    /** A deadline for one logical call, retries and their waits included. Default 10 s. */
    timeoutMs?: number;
}

/** Graph's documented limit of group ids per checkMemberGroups call. */
export const CHECK_MEMBER_GROUPS_LIMIT = 20;
/** The most messages a channel message listing returns per page (Graph's documented maximum for `$top`). */
export const CHANNEL_MESSAGES_PAGE_SIZE = 50;
/** Graph's largest page of directory objects; fewer, larger pages are cheaper against its throttling budget. */
const MEMBERS_PAGE_SIZE = 999;

const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// The directory is asked about whoever clicks a card, so the caches are bounded rather than trusted to stay small.
const maxCacheEntries = 5000;

type GraphModule = typeof import('@microsoft/microsoft-graph-client');

interface GraphHandle {
    client: Client;
    module: GraphModule;
}

/**
 * The approver directory on Microsoft Graph, with the app's own identity (application permissions
 * GroupMember.Read.All and User.Read.All).
 *
 * Why graph-client 3.0.7 and how it is tamed:
 * - It is loaded on the first call, not at import: most invocations (events, sweeps) never ask Graph, and the
 *   package with its middleware is a noticeable part of a cold start.
 * - Its authentication, telemetry and `fetch` handlers are left out: the last link of the chain (graphHttp.ts) adds
 *   the token, for the configured endpoint's origin only, and sends through the core HTTP client, without loading
 *   Node's fetch. The token never goes over http, so an http endpoint is refused here rather than failing later.
 * - Its RetryHandler retries 429/503/504 and honours Retry-After up to 180 s, which would outlive a Teams invoke. Each
 *   request therefore carries its own retry options (fewer retries, short waits, long Retry-Afters not slept through)
 *   and an abort deadline.
 * - Its errors are GraphError with `statusCode` -1 when no response arrived (network, abort, credential failure),
 *   which the shared `isTransientStatus` would call permanent; `graphStatus` turns -1 into "no answer".
 */
export class GraphDirectory implements ApproverDirectory {
    private readonly endpoint: string;
    /** The scope of the app's Graph token (a process asks for it early: see runtime.ts). */
    readonly tokenScope: string;
    private readonly origin: string;
    private readonly credential: TokenCredential;
    private readonly cacheTtlMs: number;
    private readonly negativeCacheTtlMs: number;
    private readonly now: () => number;
    private readonly retry: Required<GraphRetryOptions>;
    private readonly timeoutMs: number;
    private readonly memberships: TtlCache<boolean>;
    private readonly users: TtlCache<DirectoryUser | undefined>;
    private readonly approverLists: TtlCache<DirectoryUser[]>;
    private handle: Promise<GraphHandle> | undefined;

    constructor(options: GraphDirectoryOptions) {
        let url: URL;
        try {
            url = new URL(options.endpoint);
        } catch (err) {
            throw new ConfigError(`Graph endpoint is not a URL: ${options.endpoint}`, { cause: err });
        }
        if (url.protocol !== 'https:') {
            // The token is never sent over http (see above).
            throw new ConfigError(`Graph endpoint must be https: ${options.endpoint}`);
        }
        this.endpoint = url.href.replace(/\/+$/, '');
        this.tokenScope = `${this.endpoint}/.default`;
        this.origin = url.origin;
        this.credential = options.credential;
        this.cacheTtlMs = options.cacheTtlMs ?? 5 * 60_000;
        this.negativeCacheTtlMs = options.negativeCacheTtlMs ?? 60_000;
        const now = options.now ?? (() => new Date());
        this.now = () => now().getTime();
        this.retry = {
            maxRetries: options.retry?.maxRetries ?? 2,
            delaySeconds: options.retry?.delaySeconds ?? 1,
            maxRetryAfterSeconds: options.retry?.maxRetryAfterSeconds ?? 5,
        };
        this.timeoutMs = options.timeoutMs ?? 10_000;
        this.memberships = new TtlCache(this.now, (isMember) => (isMember ? this.cacheTtlMs : this.negativeCacheTtlMs));
        this.users = new TtlCache(this.now, (user) => (user ? this.cacheTtlMs : this.negativeCacheTtlMs));
        // Reminders are hours apart and tolerate a stale list: an empty one is kept as long as any other.
        this.approverLists = new TtlCache(this.now, () => this.cacheTtlMs);
    }

    async isMemberOfAny(userObjectId: string, groupIds: readonly string[]): Promise<boolean> {
        const userId = userObjectId.trim().toLowerCase();
        if (!guidPattern.test(userId)) {
            // Not an Entra object id (a UPN, an empty claim, a path): never a member, and never sent to Graph.
            return false;
        }
        const groups = approverGroups(groupIds);
        if (groups.length === 0) {
            return false;
        }
        return this.memberships.get(`${userId}|${groups.join(',')}`, () => this.checkMemberGroups(userId, groups));
    }

    async listApprovers(groupIds: readonly string[], limit: number): Promise<DirectoryUser[]> {
        const groups = approverGroups(groupIds);
        checkListLimit(limit);
        if (groups.length === 0 || limit === 0) {
            return [];
        }
        const users = await this.approverLists.get(`${groups.join(',')}|${limit}`, () =>
            this.listTransitiveUsers(groups, limit),
        );
        // Copies: the cached list and its users are shared by every caller.
        return users.map((user) => ({ ...user }));
    }

    async getUser(userObjectId: string): Promise<DirectoryUser | undefined> {
        const userId = userObjectId.trim().toLowerCase();
        if (!guidPattern.test(userId)) {
            return undefined;
        }
        const user = await this.users.get(userId, () => this.fetchUser(userId));
        // A copy: the cached object is shared by every caller.
        return user === undefined ? undefined : { ...user };
    }

    private async checkMemberGroups(userId: string, groups: readonly string[]): Promise<boolean> {
        const { client, module } = await this.graph();
        const deadline = AbortSignal.timeout(this.timeoutMs);
        // Chunks one after another, not in parallel: approver lists are short and the first hit ends the search.
        for (let i = 0; i < groups.length; i += CHECK_MEMBER_GROUPS_LIMIT) {
            const chunk = groups.slice(i, i + CHECK_MEMBER_GROUPS_LIMIT);
            let answer: unknown;
            try {
                answer = await client
                    .api(`/users/${userId}/checkMemberGroups`)
                    .middlewareOptions([this.retryOptions(module)])
                    .option('signal', deadline)
                    .post({ groupIds: chunk });
            } catch (err) {
                if (graphStatus(err) === 404) {
                    return false;
                }
                throw this.mapError(err, module, 'checkMemberGroups', 'GroupMember.Read.All');
            }
            const value = (answer as { value?: unknown } | undefined)?.value;
            if (!Array.isArray(value) || !value.every((id) => typeof id === 'string')) {
                throw new PermanentError('Microsoft Graph answered checkMemberGroups without a list of group ids');
            }
            // Graph returns the ids in its own casing, which need not be the casing asked for.
            const wanted = new Set(chunk);
            if (value.some((id: string) => wanted.has(id.toLowerCase()))) {
                return true;
            }
        }
        return false;
    }

    /**
     * Pages through each group's transitive user members until `limit` distinct users are found. Which users make the
     * cut when there are more is Graph's paging order; the answer is then sorted, so its order does not depend on it.
     */
    /**
     * One page of a channel's root messages (`GET /teams/{team-id}/channels/{channel-id}/messages`, newest first, up to
     * 50 a page), or the page a nextLink names. Application context needs ChannelMessage.Read.Group, granted to the app
     * in that team through resource-specific consent (the Teams app manifest asks for it), or ChannelMessage.Read.All.
     * Graph's `{team-id}` is the team's Microsoft 365 group id: a thread id there is answered 400.
     */
    async channelMessagesPage(
        groupId: string,
        channelId: string,
        nextLink?: string,
    ): Promise<{ messages: unknown[]; nextLink?: string }> {
        const { client, module } = await this.graph();
        if (nextLink) {
            this.checkNextLink(nextLink, new Set());
        }
        let answer: unknown;
        try {
            const request = nextLink
                ? client.api(nextLink)
                : client
                      .api(`/teams/${encodeURIComponent(groupId)}/channels/${encodeURIComponent(channelId)}/messages`)
                      .top(CHANNEL_MESSAGES_PAGE_SIZE);
            answer = await request
                .middlewareOptions([this.retryOptions(module)])
                .option('signal', AbortSignal.timeout(this.timeoutMs))
                .get();
        } catch (err) {
            throw this.mapError(err, module, 'list the channel messages', 'ChannelMessage.Read.Group');
        }
        const page = answer as { value?: unknown; '@odata.nextLink'?: unknown } | undefined;
        if (!Array.isArray(page?.value)) {
            throw new PermanentError('Microsoft Graph answered a channel message listing without a list of messages');
        }
        const next = page['@odata.nextLink'];
        return { messages: page.value, ...(typeof next === 'string' && next ? { nextLink: next } : {}) };
    }

    private async listTransitiveUsers(groups: readonly string[], limit: number): Promise<DirectoryUser[]> {
        const { client, module } = await this.graph();
        const deadline = AbortSignal.timeout(this.timeoutMs);
        const found = new Map<string, DirectoryUser>();
        for (const groupId of groups) {
            // The cast segment has Graph filter server-side: nested groups, devices and service principals never come
            // back. A page may still hold fewer than $top, so only the absence of a nextLink ends the listing. An OData
            // cast on transitive members is an advanced query: Graph requires `ConsistencyLevel: eventual` and
            // `$count=true` with it (learn.microsoft.com/graph/aad-advanced-queries), on every page, the nextLink's too.
            let request = client
                .api(`/groups/${groupId}/transitiveMembers/microsoft.graph.user`)
                .select(['id', 'displayName', 'userPrincipalName'])
                .top(MEMBERS_PAGE_SIZE)
                .count(true);
            const seenLinks = new Set<string>();
            for (;;) {
                let answer: unknown;
                try {
                    answer = await request
                        .header('ConsistencyLevel', 'eventual')
                        .middlewareOptions([this.retryOptions(module)])
                        .option('signal', deadline)
                        .get();
                } catch (err) {
                    // A 404 (the group was deleted) stays permanent: the setting names a group that is gone.
                    throw this.mapError(err, module, `list the members of group ${groupId}`, 'GroupMember.Read.All');
                }
                const page = answer as { value?: unknown; '@odata.nextLink'?: unknown } | undefined;
                if (!Array.isArray(page?.value)) {
                    throw new PermanentError('Microsoft Graph answered a member listing without a list of members');
                }
                for (const item of page.value) {
                    const user = typeof item === 'object' && item !== null ? toDirectoryUser(item) : undefined;
                    // Without an id there is no one to mention; Graph always sends it, so this is only a guard.
                    if (user && !found.has(user.objectId.toLowerCase())) {
                        found.set(user.objectId.toLowerCase(), user);
                        if (found.size >= limit) {
                            return [...found.values()].sort(compareDirectoryUsers);
                        }
                    }
                }
                const nextLink = page['@odata.nextLink'];
                if (typeof nextLink !== 'string' || nextLink === '') {
                    break;
                }
                this.checkNextLink(nextLink, seenLinks);
                // graph-client takes an absolute URL as it is: host, version, path and the query, $skiptoken kept as
                // sent (it splits the query on '&' and never decodes or re-encodes the values).
                request = client.api(nextLink);
            }
        }
        return [...found.values()].sort(compareDirectoryUsers);
    }

    /**
     * A nextLink is followed with the app's token, so it must point back at the configured endpoint; and one that
     * repeats would page forever within the deadline.
     */
    private checkNextLink(nextLink: string, seen: Set<string>): void {
        let url: URL;
        try {
            url = new URL(nextLink);
        } catch {
            throw new PermanentError(
                `Microsoft Graph answered a nextLink that is not a URL: ${nextLink.slice(0, 200)}`,
            );
        }
        if (url.origin !== this.origin) {
            throw new PermanentError(`Microsoft Graph answered a nextLink outside ${this.endpoint}: ${url.origin}`);
        }
        if (seen.has(nextLink)) {
            throw new PermanentError('Microsoft Graph answered the same nextLink twice');
        }
        seen.add(nextLink);
    }

    private async fetchUser(userId: string): Promise<DirectoryUser | undefined> {
        const { client, module } = await this.graph();
        let answer: unknown;
        try {
            answer = await client
                .api(`/users/${userId}`)
                .select(['id', 'displayName', 'userPrincipalName', 'mail'])
                .middlewareOptions([this.retryOptions(module)])
                .option('signal', AbortSignal.timeout(this.timeoutMs))
                .get();
        } catch (err) {
            if (graphStatus(err) === 404) {
                return undefined;
            }
            throw this.mapError(err, module, 'get user', 'User.Read.All');
        }
        if (typeof answer !== 'object' || answer === null) {
            throw new PermanentError('Microsoft Graph answered a user request without a user');
        }
        return toDirectoryUser(answer, userId) ?? { objectId: userId };
    }

    private graph(): Promise<GraphHandle> {
        this.handle ??= this.loadGraph().catch((err: unknown) => {
            // A failed load is not remembered, so a later call can try again.
            this.handle = undefined;
            throw err;
        });
        return this.handle;
    }

    private async loadGraph(): Promise<GraphHandle> {
        const module = await import('@microsoft/microsoft-graph-client');
        // graph-client's retry and redirect handlers; the token and the send are the last link's (see graphHttp.ts).
        const middleware = graphMiddleware(module, sharedTimeoutHttpClient(this.timeoutMs), {
            credential: this.credential,
            scope: this.tokenScope,
            origin: this.origin,
        });
        const client = module.Client.initWithMiddleware({
            middleware,
            baseUrl: this.endpoint,
            defaultVersion: 'v1.0',
        });
        return { client, module };
    }

    private retryOptions(module: GraphModule): RetryHandlerOptions {
        const limit = this.retry.maxRetryAfterSeconds;
        const shouldRetry: ShouldRetry = (_delay, _attempt, _request, _options, response) => {
            const wait = retryAfterSeconds(response.headers.get('retry-after'), this.now());
            return wait === undefined || wait <= limit;
        };
        return new module.RetryHandlerOptions(this.retry.delaySeconds, this.retry.maxRetries, shouldRetry);
    }

    private mapError(err: unknown, module: GraphModule, operation: string, permission: string): Error {
        const e = ensureErrorType(err);
        if (err instanceof module.GraphClientError) {
            // Thrown for the client's own misconfiguration (a bad base URL, no token), never by the service.
            return new PermanentError(`Graph client refused ${operation}: ${e.message}`, { cause: e });
        }
        const status = graphStatus(err);
        const code = (err as { code?: unknown }).code;
        const detail = `${status ?? 'no answer'}${typeof code === 'string' && code ? ` ${code}` : ''}: ${describe(err, e)}`;
        if (status === 401 || status === 403) {
            const token = status === 401 ? `, or its token is not for ${this.endpoint}` : '';
            return new PermanentError(
                `Microsoft Graph refused ${operation} (${detail}). The app's identity lacks the Microsoft Graph ` +
                    `application permission ${permission} (grant it with admin consent)${token}`,
                { cause: e },
            );
        }
        if (isTransientStatus(status) || (status !== undefined && status < 400)) {
            // A 2xx here is a body that would not parse: a proxy's page, a cut connection. Worth another try.
            return new TransientError(`Microsoft Graph ${operation} failed (${detail})`, { cause: e });
        }
        return new PermanentError(`Microsoft Graph ${operation} failed (${detail})`, { cause: e });
    }
}

/** Normalised, sorted, distinct group ids (so they make a stable cache key); refuses any that is not a GUID. */
function approverGroups(groupIds: readonly string[]): string[] {
    const groups = [...new Set(groupIds.map((id) => id.trim().toLowerCase()))].sort();
    const bad = groups.filter((id) => !guidPattern.test(id));
    if (bad.length > 0) {
        // Settings are validated at start-up, so this is a caller's bug; Graph would answer 400 anyway.
        throw new ValidationError(`Approver group ids must be GUIDs; bad: ${bad.join(', ')}`);
    }
    return groups;
}

/** A Graph user object as the domain wants it; undefined when it has no id and no fallback is given. */
function toDirectoryUser(answer: object, fallbackId?: string): DirectoryUser | undefined {
    const raw = answer as Record<string, unknown>;
    // Graph sends null for an unset property (mail, often); the domain wants it absent.
    const text = (name: string) => (typeof raw[name] === 'string' && raw[name] !== '' ? raw[name] : undefined);
    const objectId = text('id') ?? fallbackId;
    if (objectId === undefined) {
        return undefined;
    }
    const displayName = text('displayName');
    const userPrincipalName = text('userPrincipalName');
    const mail = text('mail');
    return {
        objectId,
        ...(displayName !== undefined ? { displayName } : {}),
        ...(userPrincipalName !== undefined ? { userPrincipalName } : {}),
        ...(mail !== undefined ? { mail } : {}),
    };
}

/** The HTTP status of a graph-client error, or undefined when no response arrived (graph-client says -1). */
function graphStatus(err: unknown): number | undefined {
    const status = statusCodeOf(err);
    return status === undefined || status < 100 ? undefined : status;
}

/**
 * The message of a graph-client error. When no response arrived, graph-client wraps the fetch error in a GraphError
 * that keeps neither `cause` nor, if the error came from another realm (a jest sandbox), even its message: the
 * original sits in `body`, as the error or as its toString().
 */
function describe(err: unknown, e: Error): string {
    const body = (err as { body?: unknown }).body;
    if (e.message || typeof body !== 'object' || body === null) {
        return e.message || (typeof body === 'string' ? body : 'no details');
    }
    const inner = body as { name?: unknown; message?: unknown; cause?: { code?: unknown } };
    const name = typeof inner.name === 'string' ? `${inner.name}: ` : '';
    const cause = typeof inner.cause?.code === 'string' ? ` (${inner.cause.code})` : '';
    return `${name}${typeof inner.message === 'string' ? inner.message : 'no details'}${cause}`;
}

function retryAfterSeconds(header: string | null, nowMs: number): number | undefined {
    if (header === null || header.trim() === '') {
        return undefined;
    }
    const seconds = Number(header);
    if (Number.isFinite(seconds)) {
        return seconds;
    }
    const date = Date.parse(header);
    return Number.isNaN(date) ? undefined : Math.max(0, (date - nowMs) / 1000);
}

/**
 * A time-bounded cache that also shares the call in flight: a burst of clicks on one card asks Graph once. Failures
 * are never stored, so the next caller tries again.
 */
class TtlCache<T> {
    private readonly entries = new Map<string, { value: T; expiresAt: number }>();
    private readonly inFlight = new Map<string, Promise<T>>();

    constructor(
        private readonly now: () => number,
        private readonly ttlFor: (value: T) => number,
    ) {}

    get(key: string, load: () => Promise<T>): Promise<T> {
        const hit = this.entries.get(key);
        if (hit && hit.expiresAt > this.now()) {
            return Promise.resolve(hit.value);
        }
        this.entries.delete(key);
        const pending = this.inFlight.get(key);
        if (pending) {
            return pending;
        }
        const promise = load()
            .then((value) => {
                this.store(key, value);
                return value;
            })
            .finally(() => this.inFlight.delete(key));
        this.inFlight.set(key, promise);
        return promise;
    }

    private store(key: string, value: T): void {
        const now = this.now();
        if (this.entries.size >= maxCacheEntries) {
            for (const [k, entry] of this.entries) {
                if (entry.expiresAt <= now) {
                    this.entries.delete(k);
                }
            }
            // Still full: drop the oldest (a Map iterates in insertion order).
            const oldest = this.entries.keys().next();
            if (this.entries.size >= maxCacheEntries && !oldest.done) {
                this.entries.delete(oldest.value);
            }
        }
        this.entries.set(key, { value, expiresAt: now + this.ttlFor(value) });
    }
}

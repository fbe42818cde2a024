import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { applyFault, bearerAudience, FaultPlan, sendJson, startServer, type RunningServer } from './server';

/**
 * A Microsoft Graph emulator: the directory calls the app makes, `POST /v1.0/users/{id}/checkMemberGroups` (transitive,
 * through nested groups), `GET /v1.0/users/{id}` with `$select`, and
 * `GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user` with `$select`, `$top` and paging by an absolute
 * `@odata.nextLink` that carries a `$skiptoken` (an advanced query: refused with 400 `Request_UnsupportedQuery` without
 * `ConsistencyLevel: eventual` and `$count=true`). It answers as Graph does: error bodies with `innerError`, 404
 * `Request_ResourceNotFound` for an unknown user or group, 400 above 20 group ids, 401 for a token minted for another
 * audience. It serves https only, because graph-client never sends its token over http.
 */

export interface GraphUser {
    id: string;
    displayName?: string;
    userPrincipalName?: string;
    mail?: string;
}

export interface GraphRequestRecord {
    method: string;
    /** The path without the query, e.g. `/v1.0/users/{id}/checkMemberGroups`. */
    path: string;
    query: Record<string, string>;
    /** The parsed JSON body, if any. */
    body?: unknown;
    authorization?: string;
    /** Set by graph-client's RetryHandler on retries ("1", "2", ...). */
    retryAttempt?: string;
    /** The `ConsistencyLevel` header, which Graph's advanced queries require. */
    consistencyLevel?: string;
}

const userProperties = ['id', 'displayName', 'userPrincipalName', 'mail'] as const;
/** Graph's page size for directory objects when no `$top` is given, and the largest `$top` it takes. */
const defaultTop = 100;
const maxTop = 999;

function errorBody(status: number, code: string, message?: string) {
    return {
        error: {
            code,
            message: message ?? `Emulated ${status}`,
            innerError: { date: new Date().toISOString().replace(/\.\d+Z$/, ''), 'request-id': randomUUID() },
        },
    };
}

/** A channel's root message as Graph's chatMessage shows it (the fields the app reads, and a few around them). */
export interface ChatMessageRecord {
    id: string;
    replyToId: null;
    messageType: 'message';
    createdDateTime: string;
    lastModifiedDateTime?: string;
    from: {
        application: { id: string; displayName: string; applicationIdentityType: 'bot' } | null;
        user: { id: string; displayName: string; userIdentityType: 'aadUser' } | null;
        device: null;
    };
    body: { contentType: 'html'; content: string };
    channelIdentity: { teamId: string; channelId: string };
    /** `content` is the card as a JSON string, as Graph gives it. */
    attachments: {
        id: string;
        contentType: string;
        contentUrl: null;
        content: string;
        name: null;
        thumbnailUrl: null;
    }[];
}

export class GraphEmulator {
    readonly faults = new FaultPlan();
    readonly requests: GraphRequestRecord[] = [];
    /** The `aud` a token must carry. Tests that point the directory at this emulator set it to `url`. */
    expectedAudience: string;

    /**
     * The most members one page carries, whatever `$top` asks: Graph may send fewer than `$top`, so a client must follow
     * nextLinks rather than count. Set it low (2) to make a test page. `reset` restores it.
     */
    pageSize: number;

    private readonly users = new Map<string, GraphUser>();
    /** Group id (lower-cased) to its direct members (user or group ids, lower-cased). */
    private readonly groups = new Map<string, { id: string; members: Set<string> }>();

    private constructor(
        private readonly server: RunningServer,
        expectedAudience: string,
        private readonly defaultPageSize: number,
    ) {
        this.expectedAudience = expectedAudience;
        this.pageSize = defaultPageSize;
    }

    /** The Graph root to configure, e.g. `https://127.0.0.1:1234` (requests go to `{url}/v1.0/...`). */
    get url(): string {
        return this.server.url;
    }

    static async start(options: { expectedAudience?: string; pageSize?: number } = {}): Promise<GraphEmulator> {
        const self: { current?: GraphEmulator } = {};
        const server = await startServer((req, res, body) => self.current!.handle(req, res, body), { https: true });
        self.current = new GraphEmulator(
            server,
            options.expectedAudience ?? 'https://graph.microsoft.com',
            options.pageSize ?? maxTop,
        );
        return self.current;
    }

    addUser(user: GraphUser): this {
        this.users.set(user.id.toLowerCase(), { ...user });
        return this;
    }

    /**
     * Adds (or extends) a group. Members are user ids or group ids: nested groups count for checkMemberGroups and
     * transitiveMembers. An id that is neither an added user nor an added group stands for another kind of object (a
     * device, a service principal): it counts for membership checks but the `microsoft.graph.user` cast leaves it out.
     */
    addGroup(id: string, options: { members?: string[] } = {}): this {
        const group = this.groups.get(id.toLowerCase()) ?? { id, members: new Set<string>() };
        for (const member of options.members ?? []) {
            group.members.add(member.toLowerCase());
        }
        this.groups.set(id.toLowerCase(), group);
        return this;
    }

    /** Requests to one user's endpoints, e.g. to count calls that a cache should have saved. */
    requestsFor(userId: string): GraphRequestRecord[] {
        const prefix = `/v1.0/users/${userId.toLowerCase()}`;
        return this.requests.filter((r) => r.path.toLowerCase().startsWith(prefix));
    }

    /** Requests to one group's endpoints (every page of its member listing). */
    requestsForGroup(groupId: string): GraphRequestRecord[] {
        const prefix = `/v1.0/groups/${groupId.toLowerCase()}`;
        return this.requests.filter((r) => r.path.toLowerCase().startsWith(prefix));
    }

    reset(): void {
        this.requests.length = 0;
        this.faults.clear();
        this.pageSize = this.defaultPageSize;
    }

    close(): Promise<void> {
        return this.server.close();
    }

    private async handle(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
        const url = new URL(req.url ?? '/', 'https://localhost');
        const method = req.method ?? 'GET';
        let json: unknown;
        let badJson = false;
        if (body) {
            try {
                json = JSON.parse(body);
            } catch {
                badJson = true;
            }
        }
        const retryAttempt = header(req, 'retry-attempt');
        const authorization = header(req, 'authorization');
        const consistencyLevel = header(req, 'consistencylevel');
        this.requests.push({
            method,
            path: url.pathname,
            query: Object.fromEntries(url.searchParams),
            ...(json !== undefined ? { body: json } : {}),
            ...(authorization !== undefined ? { authorization } : {}),
            ...(retryAttempt !== undefined ? { retryAttempt } : {}),
            ...(consistencyLevel !== undefined ? { consistencyLevel } : {}),
        });
        const headers = { 'request-id': randomUUID(), 'client-request-id': header(req, 'client-request-id') ?? '' };

        // Graph checks the token before anything else, faults included: a request without one is never throttled.
        if (!authorization) {
            sendJson(res, 401, errorBody(401, 'InvalidAuthenticationToken', 'Access token is empty.'), headers);
            return;
        }
        const audience = bearerAudience(authorization);
        if (audience?.replace(/\/+$/, '') !== this.expectedAudience.replace(/\/+$/, '')) {
            sendJson(res, 401, errorBody(401, 'InvalidAuthenticationToken', 'Invalid audience.'), headers);
            return;
        }

        const fault = this.faults.take(method, url.pathname);
        if (fault?.kind === 'error' && (fault.status === 503 || fault.status === 504)) {
            // Graph sends Retry-After with its 503s; 0 keeps graph-client's retries from sleeping its default 3 s.
            sendJson(res, fault.status, errorBody(fault.status, fault.code ?? 'serviceNotAvailable'), {
                ...headers,
                'retry-after': '0',
            });
            return;
        }
        if (await applyFault(fault, res, errorBody)) {
            return;
        }
        if (badJson) {
            sendJson(res, 400, errorBody(400, 'BadRequest', 'Unable to read JSON request payload.'), headers);
            return;
        }

        const channelMessages = /^\/v1\.0\/teams\/([^/]+)\/channels\/([^/]+)\/messages$/i.exec(url.pathname);
        if (channelMessages) {
            this.listChannelMessages(
                decodeURIComponent(channelMessages[1]!),
                decodeURIComponent(channelMessages[2]!),
                method,
                url,
                res,
                headers,
            );
            return;
        }

        const groupMembers = /^\/v1\.0\/groups\/([^/]+)\/transitiveMembers\/microsoft\.graph\.user$/i.exec(
            url.pathname,
        );
        if (groupMembers) {
            this.listTransitiveUsers(decodeURIComponent(groupMembers[1]!), method, url, req, res, headers);
            return;
        }

        const m = /^\/v1\.0\/users\/([^/]+)(\/checkMemberGroups)?$/i.exec(url.pathname);
        if (!m) {
            sendJson(res, 400, errorBody(400, 'BadRequest', `Resource not found for the segment.`), headers);
            return;
        }
        const userKey = decodeURIComponent(m[1]!).toLowerCase();
        const user =
            this.users.get(userKey) ??
            [...this.users.values()].find((u) => u.userPrincipalName?.toLowerCase() === userKey);
        if (!user) {
            sendJson(
                res,
                404,
                errorBody(
                    404,
                    'Request_ResourceNotFound',
                    `Resource '${userKey}' does not exist or one of its queried reference-property objects are not present.`,
                ),
                headers,
            );
            return;
        }

        if (m[2] !== undefined) {
            if (method !== 'POST') {
                sendJson(
                    res,
                    405,
                    errorBody(405, 'Request_BadRequest', 'Specified HTTP method is not allowed.'),
                    headers,
                );
                return;
            }
            const groupIds = (json as { groupIds?: unknown } | undefined)?.groupIds;
            if (!Array.isArray(groupIds) || !groupIds.every((g) => typeof g === 'string')) {
                sendJson(res, 400, errorBody(400, 'Request_BadRequest', 'groupIds is required.'), headers);
                return;
            }
            if (groupIds.length > 20) {
                sendJson(
                    res,
                    400,
                    errorBody(400, 'Request_BadRequest', 'The number of group ids exceeds the limit of 20.'),
                    headers,
                );
                return;
            }
            const memberOf = this.transitiveGroupsOf(user.id);
            const value = groupIds.flatMap((g) => {
                const group = this.groups.get(g.toLowerCase());
                // Answered in the directory's casing, not the caller's, as Graph does.
                return group && memberOf.has(g.toLowerCase()) ? [group.id] : [];
            });
            sendJson(
                res,
                200,
                { '@odata.context': `${this.url}/v1.0/$metadata#Collection(Edm.String)`, value },
                headers,
            );
            return;
        }

        if (method !== 'GET') {
            sendJson(res, 405, errorBody(405, 'Request_BadRequest', 'Specified HTTP method is not allowed.'), headers);
            return;
        }
        const wanted = selectedUserProperties(url, res, headers);
        if (!wanted) {
            return;
        }
        // Graph answers an unset property with null, not by leaving it out.
        const answer: Record<string, unknown> = {
            '@odata.context': `${this.url}/v1.0/$metadata#users(${wanted.join(',')})/$entity`,
        };
        for (const p of wanted) {
            answer[p] = user[p as keyof GraphUser] ?? null;
        }
        sendJson(res, 200, answer, headers);
    }

    /**
     * `GET /groups/{id}/transitiveMembers/microsoft.graph.user`: the group's users, directly or through nested groups,
     * each once, in a stable order (breadth first, then the order members were added). A page holds at most
     * min($top, pageSize) users; the nextLink is absolute and repeats the query with a `$skiptoken`, as Graph's does.
     */
    private listTransitiveUsers(
        groupKey: string,
        method: string,
        url: URL,
        req: IncomingMessage,
        res: ServerResponse,
        headers: Record<string, string>,
    ): void {
        if (method !== 'GET') {
            sendJson(res, 405, errorBody(405, 'Request_BadRequest', 'Specified HTTP method is not allowed.'), headers);
            return;
        }
        // An OData cast on transitive members is an advanced query: without `ConsistencyLevel: eventual` and
        // `$count=true`, Graph refuses it (learn.microsoft.com/graph/aad-advanced-queries).
        if (
            header(req, 'consistencylevel')?.toLowerCase() !== 'eventual' ||
            url.searchParams.get('$count') !== 'true'
        ) {
            sendJson(res, 400, errorBody(400, 'Request_UnsupportedQuery', 'Unsupported Query.'), headers);
            return;
        }
        const group = this.groups.get(groupKey.toLowerCase());
        if (!group) {
            sendJson(
                res,
                404,
                errorBody(
                    404,
                    'Request_ResourceNotFound',
                    `Resource '${groupKey}' does not exist or one of its queried reference-property objects are not present.`,
                ),
                headers,
            );
            return;
        }
        const wanted = selectedUserProperties(url, res, headers);
        if (!wanted) {
            return;
        }
        const topParam = url.searchParams.get('$top');
        const top = topParam === null ? defaultTop : Number(topParam);
        if (!Number.isInteger(top) || top < 1 || top > maxTop) {
            sendJson(
                res,
                400,
                errorBody(
                    400,
                    'Request_BadRequest',
                    `Invalid page size specified: '${topParam}'. Must be between 1 and 999 inclusive.`,
                ),
                headers,
            );
            return;
        }
        let offset = 0;
        const skipToken = url.searchParams.get('$skiptoken');
        if (skipToken !== null) {
            const decoded = decodeSkipToken(skipToken);
            if (decoded?.group !== groupKey.toLowerCase()) {
                sendJson(
                    res,
                    400,
                    errorBody(400, 'Request_BadRequest', 'The specified page token value has expired or is invalid.'),
                    headers,
                );
                return;
            }
            offset = decoded.offset;
        }

        const members = this.transitiveUsersOf(groupKey.toLowerCase());
        const size = Math.min(top, Math.max(1, this.pageSize));
        const page = members.slice(offset, offset + size);
        const answer: Record<string, unknown> = {
            '@odata.context': `${this.url}/v1.0/$metadata#users(${wanted.join(',')})`,
            '@odata.count': members.length,
        };
        if (offset + size < members.length) {
            const next = new URLSearchParams(url.searchParams);
            next.set('$skiptoken', encodeSkipToken(groupKey.toLowerCase(), offset + size));
            // URLSearchParams would write `$` as %24; Graph's own links keep the option names readable.
            const query = [...next].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
            answer['@odata.nextLink'] = `${this.url}${url.pathname}?${query}`;
        }
        answer.value = page.map((user) => {
            // Graph answers an unset property with null, and tags each item of a cast collection with its type.
            const item: Record<string, unknown> = { '@odata.type': '#microsoft.graph.user' };
            for (const p of wanted) {
                item[p] = user[p as keyof GraphUser] ?? null;
            }
            return item;
        });
        sendJson(res, 200, answer, headers);
    }

    /**
     * `GET /teams/{team-id}/channels/{channel-id}/messages`: the channel's root messages, newest first, `$top` up to
     * 50 (default 20), later pages through `@odata.nextLink` with a `$skiptoken`. The messages come from
     * `channelMessages` (the harness connects the Bot Connector emulator's threads); a channel it does not know is 404.
     */
    channelMessages?: (teamId: string, channelId: string) => ChatMessageRecord[] | undefined;

    private listChannelMessages(
        teamId: string,
        channelId: string,
        method: string,
        url: URL,
        res: ServerResponse,
        headers: Record<string, string>,
    ): void {
        if (method !== 'GET') {
            sendJson(res, 405, errorBody(405, 'MethodNotAllowed', 'The method is not allowed.'), headers);
            return;
        }
        if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(teamId)) {
            // Graph names a team by its Microsoft 365 group id; a Bot Framework thread id is refused.
            sendJson(res, 400, errorBody(400, 'BadRequest', 'teamId needs to be a valid GUID.'), headers);
            return;
        }
        const all = this.channelMessages?.(teamId, channelId);
        if (!all) {
            sendJson(res, 404, errorBody(404, 'NotFound', 'No team found with Group Id ' + teamId), headers);
            return;
        }
        const topText = url.searchParams.get('$top') ?? url.searchParams.get('top');
        const top = topText === null ? 20 : Number(topText);
        if (!Number.isInteger(top) || top < 1 || top > 50) {
            sendJson(res, 400, errorBody(400, 'BadRequest', 'Invalid page size specified: ' + topText), headers);
            return;
        }
        const offset = Number(url.searchParams.get('$skiptoken') ?? '0');
        const sorted = [...all].sort((a, b) => b.createdDateTime.localeCompare(a.createdDateTime));
        const page = sorted.slice(offset, offset + top);
        const answer: Record<string, unknown> = {
            '@odata.context': `${this.url}/v1.0/$metadata#teams('${teamId}')/channels('${channelId}')/messages`,
            '@odata.count': page.length,
        };
        if (offset + top < sorted.length) {
            answer['@odata.nextLink'] =
                `${this.url}${url.pathname}?$top=${top}&$skiptoken=${encodeURIComponent(String(offset + top))}`;
        }
        answer.value = page;
        sendJson(res, 200, answer, headers);
    }

    /** The users in a group, directly or through nested groups, each once; cycles are tolerated. */
    private transitiveUsersOf(groupKey: string): GraphUser[] {
        const users: GraphUser[] = [];
        const seen = new Set<string>([groupKey]);
        let frontier = [groupKey];
        while (frontier.length > 0) {
            const next: string[] = [];
            for (const key of frontier) {
                for (const member of this.groups.get(key)?.members ?? []) {
                    if (seen.has(member)) {
                        continue;
                    }
                    seen.add(member);
                    const user = this.users.get(member);
                    if (user) {
                        users.push(user);
                    } else if (this.groups.has(member)) {
                        next.push(member);
                    }
                }
            }
            frontier = next;
        }
        return users;
    }

    /** Every group (lower-cased id) the principal belongs to, directly or through nested groups. */
    private transitiveGroupsOf(principalId: string): Set<string> {
        const found = new Set<string>();
        let frontier = [principalId.toLowerCase()];
        while (frontier.length > 0) {
            const next: string[] = [];
            for (const [groupKey, group] of this.groups) {
                if (!found.has(groupKey) && frontier.some((p) => group.members.has(p))) {
                    found.add(groupKey);
                    next.push(groupKey);
                }
            }
            frontier = next;
        }
        return found;
    }
}

/** Opaque to clients, as Graph's are: standard base64 (with `+`, `/`, `=`), so the nextLink must percent-encode it. */
function encodeSkipToken(group: string, offset: number): string {
    return Buffer.from(JSON.stringify({ g: group, o: offset }), 'utf8').toString('base64');
}

function decodeSkipToken(token: string): { group: string; offset: number } | undefined {
    try {
        const raw = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { g?: unknown; o?: unknown };
        return typeof raw.g === 'string' && typeof raw.o === 'number' ? { group: raw.g, offset: raw.o } : undefined;
    } catch {
        return undefined;
    }
}

function header(req: IncomingMessage, name: string): string | undefined {
    const value = req.headers[name];
    return Array.isArray(value) ? value[0] : value;
}

/**
 * The user properties a `$select` asks for (all of them without one); answers 400 as Graph does and returns undefined
 * when it names a property a user does not have.
 */
function selectedUserProperties(url: URL, res: ServerResponse, headers: Record<string, string>): string[] | undefined {
    const select = url.searchParams.get('$select');
    const wanted = select ? select.split(',').map((s) => s.trim()) : [...userProperties];
    const unknown = wanted.filter((p) => !(userProperties as readonly string[]).includes(p));
    if (unknown.length > 0) {
        const message = `Could not find a property named '${unknown[0]}' on type 'microsoft.graph.user'.`;
        sendJson(res, 400, errorBody(400, 'BadRequest', message), headers);
        return undefined;
    }
    return wanted;
}

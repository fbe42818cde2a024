import { randomUUID } from 'node:crypto';
import { bearerAudience, FaultPlan, sendJson, serveWithFault, startServer, type RunningServer } from './server';

/**
 * A Bot Connector emulator: the subset of the Bot Framework REST API (v3) the app uses to post a card into a Teams
 * channel, update it, reply in its thread, and read the team's members a page at a time. It records every
 * conversation and activity, so tests can count cards.
 */

/**
 * A team member as Teams' `pagedmembers` answers (a TeamsChannelAccount, as in Teams' "Get Teams specific context"):
 * `id` is the user's MRI, `objectId` the Entra object id (absent for anonymous users).
 */
export interface RosterMember {
    id: string;
    objectId?: string;
    name?: string;
    givenName?: string;
    surname?: string;
    email?: string;
    userPrincipalName?: string;
    tenantId?: string;
    userRole?: 'user' | 'guest' | 'anonymous';
}

/** Teams reads a page size below 50 as 50 and above 500 as 500 (same document). */
export const PAGED_MEMBERS_MIN = 50;
export const PAGED_MEMBERS_MAX = 500;

export interface RecordedActivity {
    conversationId: string;
    activityId: string;
    activity: Record<string, unknown>;
    replyToId?: string;
    /** When it was last edited (`PUT …/activities/{id}`), on the emulator's clock. */
    updatedAt?: string;
}

export interface RecordedConversation {
    id: string;
    activityId: string;
    /** When the thread was created (Graph's `createdDateTime` for its root message). */
    createdAt: string;
    /** The body of `POST /v3/conversations`. */
    parameters: Record<string, unknown>;
}

const errorBody = (status: number, code: string) => ({ error: { code, message: `Emulated ${status}` } });

/**
 * What the Bot Connector refuses in a posted activity, as far as the app can get it wrong: no type, or attachments that
 * are not a list of objects with a content type (an Adaptive Card attachment must also carry its content).
 */
function activityProblem(activity: Record<string, unknown>): string | undefined {
    if (typeof activity.type !== 'string' || activity.type === '') {
        return 'Activity type is required';
    }
    if (activity.attachments === undefined) {
        return undefined;
    }
    if (!Array.isArray(activity.attachments)) {
        return 'Attachments must be a list';
    }
    for (const attachment of activity.attachments as unknown[]) {
        const a = attachment as { contentType?: unknown; content?: unknown } | null;
        if (typeof a?.contentType !== 'string' || a.contentType === '') {
            return 'Attachment contentType is required';
        }
        if (
            a.contentType === 'application/vnd.microsoft.card.adaptive' &&
            (typeof a.content !== 'object' || !a.content)
        ) {
            return 'An Adaptive Card attachment needs its content';
        }
    }
    return undefined;
}

export class BotConnectorEmulator {
    readonly faults = new FaultPlan();
    readonly conversations: RecordedConversation[] = [];
    readonly activities: RecordedActivity[] = [];
    readonly updates: RecordedActivity[] = [];
    readonly requests: { method: string; path: string; query?: string }[] = [];
    /** Team or channel conversation id to its members, for `GET /v3/conversations/{id}/pagedmembers`. */
    readonly rosters = new Map<string, RosterMember[]>();
    /** The clock that stamps new threads (`createdAt`); the harness sets it to the workflow's. */
    now: () => Date = () => new Date();

    private constructor(private readonly server: RunningServer) {}

    /** The serviceUrl Teams would announce, e.g. `https://127.0.0.1:1234/teams/`. */
    get serviceUrl(): string {
        return `${this.server.url}/teams/`;
    }

    static async start(options: { expectedAudience?: string } = {}): Promise<BotConnectorEmulator> {
        const audience = options.expectedAudience ?? 'https://api.botframework.com';
        const self: { current?: BotConnectorEmulator } = {};
        const server = await startServer(
            async (req, res, body) => {
                const emulator = self.current!;
                const url = new URL(req.url ?? '/', 'https://localhost');
                const path = url.pathname;
                const method = req.method ?? 'GET';
                emulator.requests.push({ method, path, ...(url.search ? { query: url.search } : {}) });
                await serveWithFault(emulator.faults.take(method, path), req, res, errorBody, (out) => {
                    if (bearerAudience(req.headers.authorization)?.replace(/\/$/, '') !== audience) {
                        sendJson(out, 401, errorBody(401, 'Unauthorized'));
                        return;
                    }
                    let json: Record<string, unknown>;
                    try {
                        json = body ? (JSON.parse(body) as Record<string, unknown>) : {};
                    } catch {
                        sendJson(out, 400, errorBody(400, 'BadSyntax'));
                        return;
                    }
                    emulator.route(method, path, json, out, url.searchParams);
                });
            },
            { https: true },
        );
        self.current = new BotConnectorEmulator(server);
        return self.current;
    }

    /** Sets the members a team (or channel) conversation lists. */
    setRoster(conversationId: string, members: RosterMember[]): void {
        this.rosters.set(
            conversationId,
            members.map((m) => ({ ...m })),
        );
    }

    private route(
        method: string,
        path: string,
        json: Record<string, unknown>,
        res: Parameters<typeof sendJson>[0],
        query: URLSearchParams,
    ) {
        const paged = /^\/teams\/v3\/conversations\/([^/]+)\/pagedmembers$/.exec(path);
        if (paged) {
            this.pagedMembers(method, decodeURIComponent(paged[1]!), query, res);
            return;
        }
        const m = /^\/teams\/v3\/conversations(?:\/([^/]+)\/activities(?:\/([^/]+))?)?$/.exec(path);
        if (!m) {
            sendJson(res, 404, errorBody(404, 'NotFound'));
            return;
        }
        const conversationId = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
        const activityId = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
        if (method === 'POST' && conversationId === undefined) {
            const activity = json.activity as Record<string, unknown> | undefined;
            const channel = (json.channelData as { channel?: { id?: string } } | undefined)?.channel?.id;
            if (!activity || !channel) {
                sendJson(res, 400, errorBody(400, 'BadArgument'));
                return;
            }
            // As in Teams: the new thread's root message id is both the activity id and the `messageid` in the
            // conversation id.
            const newActivityId = `${Date.now()}${String(this.conversations.length).padStart(4, '0')}`;
            const id = `${channel};messageid=${newActivityId}`;
            this.conversations.push({
                id,
                activityId: newActivityId,
                createdAt: this.now().toISOString(),
                parameters: json,
            });
            this.activities.push({ conversationId: id, activityId: newActivityId, activity });
            sendJson(res, 201, { id, activityId: newActivityId });
            return;
        }
        const known = this.conversations.find((c) => c.id === conversationId);
        if (!known || conversationId === undefined) {
            sendJson(res, 404, errorBody(404, 'ConversationNotFound'));
            return;
        }
        if (method === 'POST' && activityId === undefined) {
            const problem = activityProblem(json);
            if (problem) {
                sendJson(res, 400, { error: { code: 'BadArgument', message: problem } });
                return;
            }
            const id = randomUUID();
            const replyToId = typeof json.replyToId === 'string' ? json.replyToId : undefined;
            this.activities.push({
                conversationId,
                activityId: id,
                activity: json,
                ...(replyToId ? { replyToId } : {}),
            });
            sendJson(res, 201, { id });
            return;
        }
        if (method === 'PUT' && activityId !== undefined) {
            const existing = this.activities.find(
                (a) => a.conversationId === conversationId && a.activityId === activityId,
            );
            if (!existing) {
                sendJson(res, 404, errorBody(404, 'ActivityNotFound'));
                return;
            }
            existing.activity = json;
            this.updates.push({ conversationId, activityId, activity: json, updatedAt: this.now().toISOString() });
            sendJson(res, 200, { id: activityId });
            return;
        }
        sendJson(res, 405, errorBody(405, 'MethodNotAllowed'));
    }

    /**
     * `GET /v3/conversations/{conversationId}/pagedmembers?pageSize=&continuationToken=`: one page of members and, while
     * more follow, an opaque `continuationToken`; the last page has none. The page size is clamped to 50..500 as Teams
     * does; a token this emulator did not issue for this conversation is a 400.
     */
    private pagedMembers(
        method: string,
        conversationId: string,
        query: URLSearchParams,
        res: Parameters<typeof sendJson>[0],
    ): void {
        if (method !== 'GET') {
            sendJson(res, 405, errorBody(405, 'MethodNotAllowed'));
            return;
        }
        const roster = this.rosters.get(conversationId);
        if (!roster) {
            sendJson(res, 404, errorBody(404, 'ConversationNotFound'));
            return;
        }
        const asked = Number(query.get('pageSize') ?? String(PAGED_MEMBERS_MAX));
        const size = Number.isFinite(asked)
            ? Math.min(PAGED_MEMBERS_MAX, Math.max(PAGED_MEMBERS_MIN, Math.trunc(asked)))
            : PAGED_MEMBERS_MAX;
        let offset = 0;
        const token = query.get('continuationToken');
        if (token !== null) {
            const decoded = decodeToken(token);
            if (!decoded || decoded.conversationId !== conversationId || decoded.offset > roster.length) {
                sendJson(res, 400, { error: { code: 'BadArgument', message: 'Invalid continuation token' } });
                return;
            }
            offset = decoded.offset;
        }
        const next = offset + size;
        sendJson(res, 200, {
            members: roster.slice(offset, next),
            ...(next < roster.length ? { continuationToken: encodeToken(conversationId, next) } : {}),
        });
    }

    /** The cards posted as new conversations (one per request). */
    cards(): Record<string, unknown>[] {
        return this.conversations.map((c) => {
            const attachments = (c.parameters.activity as { attachments?: { content?: unknown }[] }).attachments ?? [];
            return (attachments[0]?.content ?? {}) as Record<string, unknown>;
        });
    }

    /** The replies posted in a card's thread (to its activity id), oldest first. */
    replies(activityId: string): RecordedActivity[] {
        return this.activities.filter((a) => a.replyToId === activityId);
    }

    /** The Adaptive Cards a recorded activity carries, e.g. a reminder posted as a reply. */
    adaptiveCards(activity: RecordedActivity): Record<string, unknown>[] {
        const attachments = (activity.activity.attachments ?? []) as { contentType?: unknown; content?: unknown }[];
        return attachments
            .filter((a) => a.contentType === 'application/vnd.microsoft.card.adaptive')
            .map((a) => a.content as Record<string, unknown>);
    }

    close(): Promise<void> {
        return this.server.close();
    }
}

/** Opaque to clients, with characters that must be percent-encoded in a query (`+`, `/`, `=`). */
function encodeToken(conversationId: string, offset: number): string {
    return Buffer.from(JSON.stringify({ c: conversationId, o: offset })).toString('base64');
}

function decodeToken(token: string): { conversationId: string; offset: number } | undefined {
    try {
        const raw = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { c?: unknown; o?: unknown };
        return typeof raw.c === 'string' && Number.isSafeInteger(raw.o) && (raw.o as number) >= 0
            ? { conversationId: raw.c, offset: raw.o as number }
            : undefined;
    } catch {
        return undefined;
    }
}

import { randomUUID } from 'node:crypto';
import { bearerAudience, FaultPlan, sendJson, serveWithFault, startServer, type RunningServer } from './server';

/**
 * A Bot Connector emulator: the subset of the Bot Framework REST API (v3) the app uses to post a card into a Teams
 * channel, update it, and reply in its thread. It records every conversation and activity, so tests can count cards.
 */

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
    readonly requests: { method: string; path: string }[] = [];
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
                const path = new URL(req.url ?? '/', 'https://localhost').pathname;
                const method = req.method ?? 'GET';
                emulator.requests.push({ method, path });
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
                    emulator.route(method, path, json, out);
                });
            },
            { https: true },
        );
        self.current = new BotConnectorEmulator(server);
        return self.current;
    }

    private route(method: string, path: string, json: Record<string, unknown>, res: Parameters<typeof sendJson>[0]) {
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

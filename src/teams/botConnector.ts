import type { TokenCredential } from '@azure/core-auth';
import {
    bearerTokenAuthenticationPolicy,
    createHttpHeaders,
    createPipelineFromOptions,
    createPipelineRequest,
    RestError,
    retryPolicy,
    type HttpClient,
    type Pipeline,
    type RetryStrategy,
} from '@azure/core-rest-pipeline';
import { sentOnce } from '../http/sentOnce';
import { sharedTimeoutHttpClient } from '../http/timeout';
import { ensureErrorType, isTransientStatus, PermanentError, TransientError } from '../domain/errors';
import type { CardRef } from '../domain/request';
import type { AdaptiveCardJson, TeamsChannel, WebhookChannel } from './teamsChannel';
import { ROSTER_PAGE_SIZE, toTeamMember, type TeamMembersPage, type TeamRoster } from './teamRoster';
import { withoutFormData } from '../http/pipeline';

export interface HttpSettings {
    maxRetries: number;
    retryDelayInMs: number;
    /** Bound on each try (HTTP_TIMEOUT_MS); a try without an answer in time is retried like a 5xx. Default 30 s. */
    timeoutMs?: number;
}

export interface BotConnectorSettings extends HttpSettings {
    serviceUrl: string;
    tenantId: string;
    teamId?: string;
    channelId: string;
    credential: TokenCredential;
    tokenScope: string;
}

const cardContentType = 'application/vnd.microsoft.card.adaptive';

/**
 * A thin Bot Connector (v3 REST) client. botbuilder is archived and its successors bring a whole hosting stack; the app
 * needs four calls (post, update, reply, and the team's paged members), so they go through the same Azure core pipeline as the ARM SDKs: a managed-identity token for
 * the Bot Framework scope, and retries on 429/5xx that honour Retry-After.
 */
export class BotConnectorChannel implements TeamsChannel, TeamRoster {
    private readonly pipeline: Pipeline;
    private readonly httpClient: HttpClient;

    constructor(private readonly settings: BotConnectorSettings) {
        // A card post (a new thread) whose answer was lost is not re-sent by the pipeline: it may have created the
        // card already. The caller records that the outcome is unknown, and the next attempt looks in the channel
        // first. Updates are idempotent, and a reply sent twice is only noise, so those keep the pipeline's retries.
        this.httpClient = sentOnce(
            sharedTimeoutHttpClient(settings.timeoutMs),
            (request) => request.method === 'POST' && /\/v3\/conversations\/?$/.test(new URL(request.url).pathname),
        );
        this.pipeline = withoutFormData(
            createPipelineFromOptions({
                retryOptions: retryOptions(settings),
                userAgentOptions: { userAgentPrefix: 'pec-gate' },
            }),
        );
        this.pipeline.addPolicy(retryPolicy([teamsRetryStrategy(settings)], { maxRetries: settings.maxRetries }), {
            phase: 'Retry',
        });
        this.pipeline.addPolicy(
            bearerTokenAuthenticationPolicy({ credential: settings.credential, scopes: settings.tokenScope }),
        );
    }

    async postCard(card: AdaptiveCardJson, summary: string) {
        const serviceUrl = this.settings.serviceUrl;
        const body = {
            isGroup: true,
            tenantId: this.settings.tenantId,
            channelData: {
                channel: { id: this.settings.channelId },
                tenant: { id: this.settings.tenantId },
                ...(this.settings.teamId ? { team: { id: this.settings.teamId } } : {}),
            },
            activity: { type: 'message', summary, attachments: [{ contentType: cardContentType, content: card }] },
        };
        const created = (await this.send('POST', `${base(serviceUrl)}/v3/conversations`, body)) as {
            id?: string;
            activityId?: string;
        };
        if (!created?.id) {
            throw new PermanentError('Bot Connector created a conversation but returned no id');
        }
        // In a channel the new thread's root message id is the activity id, also carried after ";messageid=".
        const activityId = created.activityId ?? /;messageid=(\d+)/.exec(created.id)?.[1];
        return { serviceUrl, conversationId: created.id, ...(activityId ? { activityId } : {}) };
    }

    async updateCard(ref: CardRef, card: AdaptiveCardJson): Promise<void> {
        const { serviceUrl, conversationId, activityId } = requireBotRef(ref);
        await this.send(
            'PUT',
            `${base(serviceUrl)}/v3/conversations/${encodeURIComponent(conversationId)}/activities/${encodeURIComponent(activityId)}`,
            { type: 'message', id: activityId, attachments: [{ contentType: cardContentType, content: card }] },
        );
    }

    async reply(ref: CardRef, text: string): Promise<void> {
        await this.replyInThread(ref, { text, textFormat: 'plain' });
    }

    async replyCard(ref: CardRef, card: AdaptiveCardJson, summary: string): Promise<void> {
        // Mentions in a card live in the card's own msteams.entities, so the activity needs none of its own. The summary
        // stands in for the card where a card cannot be shown (notifications, previews).
        await this.replyInThread(ref, { summary, attachments: [{ contentType: cardContentType, content: card }] });
    }

    /**
     * One page of the team's members: `GET {serviceUrl}/v3/conversations/{teamId}/pagedmembers?pageSize=…&continuationToken=…`
     * (Bot Framework "Get conversation paged members"; Teams answers with TeamsChannelAccounts whose `id` is the MRI).
     * The team's roster is asked for, as botbuilder's TeamsInfo does in a team; without a team id, the channel's.
     */
    async membersPage(continuationToken?: string): Promise<TeamMembersPage> {
        const conversationId = this.settings.teamId ?? this.settings.channelId;
        const query = new URLSearchParams({ pageSize: String(ROSTER_PAGE_SIZE) });
        if (continuationToken !== undefined) {
            query.set('continuationToken', continuationToken);
        }
        const url = `${base(this.settings.serviceUrl)}/v3/conversations/${encodeURIComponent(conversationId)}/pagedmembers?${query}`;
        const answer = (await this.send('GET', url, undefined)) as { members?: unknown; continuationToken?: unknown };
        if (!Array.isArray(answer?.members)) {
            throw new PermanentError('Bot Connector answered a paged member listing without a list of members');
        }
        const members = answer.members.map(toTeamMember).filter((m) => m !== undefined);
        const next = answer.continuationToken;
        return { members, ...(typeof next === 'string' && next !== '' ? { continuationToken: next } : {}) };
    }

    private async replyInThread(ref: CardRef, activity: Record<string, unknown>): Promise<void> {
        const { serviceUrl, conversationId, activityId } = requireBotRef(ref);
        await this.send(
            'POST',
            `${base(serviceUrl)}/v3/conversations/${encodeURIComponent(conversationId)}/activities`,
            { type: 'message', ...activity, replyToId: activityId },
        );
    }

    private async send(method: 'GET' | 'POST' | 'PUT', url: string, body: unknown): Promise<unknown> {
        return sendJson(this.pipeline, this.httpClient, method, url, body, 'Bot Connector', teamsRetriedStatuses);
    }
}

/** Posts to a Teams Workflows incoming webhook (the fallback for tenants without the custom app). */
export class WorkflowsWebhookChannel implements WebhookChannel {
    private readonly pipeline: Pipeline;
    private readonly httpClient: HttpClient;

    constructor(
        private readonly url: string,
        settings: HttpSettings,
    ) {
        this.httpClient = sharedTimeoutHttpClient(settings.timeoutMs);
        this.pipeline = withoutFormData(createPipelineFromOptions({ retryOptions: retryOptions(settings) }));
    }

    async postCard(card: AdaptiveCardJson): Promise<void> {
        await sendJson(
            this.pipeline,
            this.httpClient,
            'POST',
            this.url,
            { type: 'message', attachments: [{ contentType: cardContentType, content: card }] },
            'Workflows webhook',
        );
    }
}

/**
 * Teams asks bots to retry 412, 502 and 504 as well as 429, backing off exponentially with jitter (Microsoft Learn,
 * "Optimize your bot with rate limiting in Teams"). The pipeline's own strategies take a 429 that names its delay and
 * the 5xx; this one takes what they leave: a 412, and a 429 that names no delay. Both are refusals, not writes that
 * may have happened, so even a card post (sent once otherwise) may go again.
 */
const teamsRetriedStatuses: readonly number[] = [412];
const delayHeaders = ['retry-after', 'retry-after-ms', 'x-ms-retry-after-ms'];

function teamsRetryStrategy(settings: HttpSettings): RetryStrategy {
    const { retryDelayInMs, maxRetryDelayInMs } = retryOptions(settings);
    return {
        name: 'teamsRetryStrategy',
        retry({ retryCount, response }) {
            const status = response?.status;
            const namesNoDelay = !delayHeaders.some((h) => response?.headers.get(h));
            if (!(status !== undefined && teamsRetriedStatuses.includes(status)) && !(status === 429 && namesNoDelay)) {
                return { skipStrategy: true };
            }
            const ceiling = Math.min(retryDelayInMs * 2 ** retryCount, maxRetryDelayInMs);
            return { retryAfterInMs: Math.round(ceiling / 2 + (Math.random() * ceiling) / 2) };
        },
    };
}

function retryOptions(settings: HttpSettings) {
    return {
        maxRetries: settings.maxRetries,
        retryDelayInMs: settings.retryDelayInMs,
        maxRetryDelayInMs: Math.max(settings.retryDelayInMs * 16, settings.retryDelayInMs),
    };
}

async function sendJson(
    pipeline: Pipeline,
    httpClient: HttpClient,
    method: 'GET' | 'POST' | 'PUT',
    url: string,
    body: unknown,
    service: string,
    alsoTransient: readonly number[] = [],
): Promise<unknown> {
    const request = createPipelineRequest({
        url,
        method,
        headers: createHttpHeaders(
            method === 'GET'
                ? { accept: 'application/json' }
                : { 'content-type': 'application/json', accept: 'application/json' },
        ),
        ...(method === 'GET' ? {} : { body: JSON.stringify(body) }),
    });
    let status: number;
    let text: string | undefined;
    try {
        const response = await pipeline.sendRequest(httpClient, request);
        status = response.status;
        text = response.bodyAsText ?? undefined;
    } catch (err) {
        const e = ensureErrorType(err);
        const code = err instanceof RestError ? err.statusCode : undefined;
        if (code !== undefined && !isTransientStatus(code) && !alsoTransient.includes(code)) {
            throw new PermanentError(`${service}: ${code} ${e.message}`, { cause: e });
        }
        throw new TransientError(`${service}: ${e.message}`, { cause: e });
    }
    if (status >= 400) {
        const message = `${service} answered ${status}: ${(text ?? '').slice(0, 300)}`;
        if (isTransientStatus(status) || alsoTransient.includes(status)) {
            throw new TransientError(message);
        }
        throw new PermanentError(message);
    }
    try {
        return text ? (JSON.parse(text) as unknown) : undefined;
    } catch {
        return undefined;
    }
}

function base(serviceUrl: string): string {
    return serviceUrl.replace(/\/+$/, '');
}

function requireBotRef(ref: CardRef): { serviceUrl: string; conversationId: string; activityId: string } {
    if (ref.channel !== 'bot' || !ref.serviceUrl || !ref.conversationId || !ref.activityId) {
        throw new PermanentError('This card was not posted by the bot, so it cannot be updated or replied to');
    }
    return { serviceUrl: ref.serviceUrl, conversationId: ref.conversationId, activityId: ref.activityId };
}

/**
 * Who is in the approval channel's team, as Teams knows them. A card's `refresh.userIds` must name Teams users by
 * their MRI (`29:…`), which Entra does not know; the roster is where an MRI meets its Entra object id. One real
 * adapter (the Bot Connector's paged members, in botConnector.ts) and the in-memory double below.
 */

import { ValidationError } from '../domain/errors';

export interface TeamMember {
    /** The Teams user id (MRI), e.g. `29:1bSnHZ7J…`: what `refresh.userIds` and `from.id` carry. */
    mri: string;
    /** The Entra object id; absent for anonymous and other users Entra does not know (they can never decide). */
    objectId?: string;
}

export interface TeamMembersPage {
    members: TeamMember[];
    /** Present while more pages follow; pass it back to get the next one. */
    continuationToken?: string;
}

export interface TeamRoster {
    /** One page of the team's members; the first without a token. Throws when Teams cannot be asked. */
    membersPage(continuationToken?: string): Promise<TeamMembersPage>;
}

/**
 * The Bot Connector's page size bounds (Teams "Get Teams specific context": fewer than 50 is read as 50, more than 500
 * as 500). The largest page means the fewest round trips against the bot's rate limits.
 */
export const ROSTER_PAGE_SIZE = 500;

const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * One member of a `pagedmembers` answer, or undefined when it has no usable id. Teams sends the Entra object id as
 * `objectId` (the documented answer; botbuilder's TeamsChannelAccount maps that name onto `AadObjectId`), while a
 * plain ChannelAccount names it `aadObjectId`: both are read. Anything that is not a GUID is not an object id.
 */
export function toTeamMember(raw: unknown): TeamMember | undefined {
    if (typeof raw !== 'object' || raw === null) {
        return undefined;
    }
    const record = raw as { id?: unknown; objectId?: unknown; aadObjectId?: unknown };
    if (typeof record.id !== 'string' || record.id.trim() === '' || record.id.length > 512) {
        return undefined;
    }
    const objectId = [record.objectId, record.aadObjectId].find(
        (v): v is string => typeof v === 'string' && guid.test(v),
    );
    return { mri: record.id, ...(objectId ? { objectId: objectId.toLowerCase() } : {}) };
}

/** The test double: a fixed member list served in pages, with a failure switch and a call count. */
export class InMemoryTeamRoster implements TeamRoster {
    readonly calls = { membersPage: 0 };
    private failure: Error | undefined;

    constructor(
        private members: TeamMember[] = [],
        private readonly pageSize = ROSTER_PAGE_SIZE,
    ) {
        if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
            throw new ValidationError(`The roster page size must be a whole number of at least 1, not ${pageSize}`);
        }
    }

    setMembers(members: TeamMember[]): this {
        this.members = members.map((m) => ({ ...m }));
        return this;
    }

    /** Makes every following call throw this error, until called again with undefined. */
    failWith(error: Error | undefined): this {
        this.failure = error;
        return this;
    }

    async membersPage(continuationToken?: string): Promise<TeamMembersPage> {
        this.calls.membersPage += 1;
        if (this.failure) {
            throw this.failure;
        }
        const offset = continuationToken === undefined ? 0 : Number(continuationToken);
        if (!Number.isSafeInteger(offset) || offset < 0 || offset > this.members.length) {
            throw new ValidationError(`Unknown continuation token: ${continuationToken}`);
        }
        const members = this.members.slice(offset, offset + this.pageSize).map((m) => ({ ...m }));
        const next = offset + this.pageSize;
        return { members, ...(next < this.members.length ? { continuationToken: String(next) } : {}) };
    }
}

/**
 * Who may approve, as Entra ID knows it. The workflow asks only these few questions, so the Graph SDK stays behind
 * one adapter (graphDirectory.ts) and the workflow's tests run against the in-memory double below.
 */

import { ValidationError } from '../domain/errors';

export interface DirectoryUser {
    objectId: string;
    displayName?: string;
    userPrincipalName?: string;
    mail?: string;
}

/** Who may approve, from Entra ID. One real adapter (Graph) and one in-memory double. */
export interface ApproverDirectory {
    /** Whether the user is a transitive member of at least one of the groups. An unknown user is not a member. */
    isMemberOfAny(userObjectId: string, groupIds: readonly string[]): Promise<boolean>;
    /** The user's names, for the ARM description ("Approved by upn"); undefined when the user does not exist. */
    getUser(userObjectId: string): Promise<DirectoryUser | undefined>;
    /**
     * The users who are transitive members of any of the groups, deduplicated by object id, at most `limit` of them
     * (in a stable order: by display name, then id). For reminders that mention the approvers.
     */
    listApprovers(groupIds: readonly string[], limit: number): Promise<DirectoryUser[]>;
}

/** Refuses a limit that is not a whole number of at least 0: a caller's bug, which must fail alike in both adapters. */
export function checkListLimit(limit: number): void {
    if (!Number.isSafeInteger(limit) || limit < 0) {
        throw new ValidationError(`The approver list limit must be a whole number of at least 0, not ${limit}`);
    }
}

// A fixed locale, so the order does not change with the host's settings; base sensitivity puts "alice" next to "Alice".
const nameCollator = new Intl.Collator('en', { sensitivity: 'base', numeric: true });

/**
 * The order of `listApprovers`: by display name, then by object id (case-insensitively, as Entra compares ids). Users
 * without a display name come last, because a mention of a bare id is the least useful one to read first.
 */
export function compareDirectoryUsers(a: DirectoryUser, b: DirectoryUser): number {
    const nameA = a.displayName?.trim() ?? '';
    const nameB = b.displayName?.trim() ?? '';
    if ((nameA === '') !== (nameB === '')) {
        return nameA === '' ? 1 : -1;
    }
    const byName = nameCollator.compare(nameA, nameB);
    if (byName !== 0) {
        return byName;
    }
    const idA = key(a.objectId);
    const idB = key(b.objectId);
    return idA < idB ? -1 : idA > idB ? 1 : 0;
}

export interface InMemoryDirectoryOptions {
    users?: DirectoryUser[];
    /** User object id to the groups it is (transitively) a member of: the double does not model nesting. */
    memberships?: Record<string, string[]>;
}

/**
 * The test double. Object ids are GUIDs, which Entra compares case-insensitively, so the double does too: a workflow
 * that passes an id through in another casing must still find the user, as it would in production.
 */
export class InMemoryDirectory implements ApproverDirectory {
    /** How often each method was called, so tests can assert that a cache in front of the directory works. */
    readonly calls = { isMemberOfAny: 0, getUser: 0, listApprovers: 0 };

    private readonly users = new Map<string, DirectoryUser>();
    private readonly memberships = new Map<string, Set<string>>();
    private failure: Error | undefined;

    constructor(options: InMemoryDirectoryOptions = {}) {
        for (const user of options.users ?? []) {
            this.addUser(user);
        }
        for (const [userId, groupIds] of Object.entries(options.memberships ?? {})) {
            this.addMember(userId, ...groupIds);
        }
    }

    addUser(user: DirectoryUser): this {
        this.users.set(key(user.objectId), { ...user });
        return this;
    }

    /** Makes the user a member of the groups. Like Entra, membership needs no user entry; getUser still needs one. */
    addMember(userObjectId: string, ...groupIds: string[]): this {
        const groups = this.memberships.get(key(userObjectId)) ?? new Set<string>();
        for (const id of groupIds) {
            groups.add(key(id));
        }
        this.memberships.set(key(userObjectId), groups);
        return this;
    }

    removeMember(userObjectId: string, ...groupIds: string[]): this {
        const groups = this.memberships.get(key(userObjectId));
        for (const id of groupIds) {
            groups?.delete(key(id));
        }
        return this;
    }

    /** Makes every following call throw this error (e.g. a TransientError), until called again with undefined. */
    failWith(error: Error | undefined): this {
        this.failure = error;
        return this;
    }

    async isMemberOfAny(userObjectId: string, groupIds: readonly string[]): Promise<boolean> {
        this.calls.isMemberOfAny += 1;
        this.throwIfFailing();
        const groups = this.memberships.get(key(userObjectId));
        return groups !== undefined && groupIds.some((id) => groups.has(key(id)));
    }

    async getUser(userObjectId: string): Promise<DirectoryUser | undefined> {
        this.calls.getUser += 1;
        this.throwIfFailing();
        const user = this.users.get(key(userObjectId));
        // A copy, so a caller that mutates the answer cannot change what the next caller sees.
        return user === undefined ? undefined : { ...user };
    }

    async listApprovers(groupIds: readonly string[], limit: number): Promise<DirectoryUser[]> {
        this.calls.listApprovers += 1;
        this.throwIfFailing();
        checkListLimit(limit);
        const wanted = new Set(groupIds.map(key));
        const found: DirectoryUser[] = [];
        // The memberships map is keyed by user, so each user is found once however many of the groups they are in.
        for (const [userId, groups] of this.memberships) {
            if ([...groups].some((id) => wanted.has(id))) {
                const user = this.users.get(userId);
                found.push(user ? { ...user } : { objectId: userId });
            }
        }
        // Sorted before the cut, so the double always picks the same users; Graph picks whichever it pages first.
        return found.sort(compareDirectoryUsers).slice(0, limit);
    }

    private throwIfFailing(): void {
        if (this.failure) {
            throw this.failure;
        }
    }
}

function key(id: string): string {
    return id.trim().toLowerCase();
}

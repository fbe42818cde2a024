import type { ApproverDirectory } from '../teams/directory';

/**
 * Who may read requests, on the dashboard and on a finished request's page alike: a (transitive) member of the approver
 * or dashboard reader groups. Rejects when Graph cannot tell; the callers then refuse, never show.
 */
export function mayReadRequests(
    directory: Pick<ApproverDirectory, 'isMemberOfAny'>,
    objectId: string,
    settings: { approverGroupIds: readonly string[]; readerGroupIds?: readonly string[] },
): Promise<boolean> {
    const groups = new Set([...settings.approverGroupIds, ...(settings.readerGroupIds ?? [])]);
    return directory.isMemberOfAny(objectId, [...groups]);
}

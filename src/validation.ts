import type { z } from 'zod';

/** A zod error as one log line, each issue with the path it is about: `value.action.verb: Invalid option; …`. */
export function issuesText(error: z.ZodError): string {
    return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
}

import * as z from 'zod';

/**
 * The app's zod settings and its small helpers for validating input, in one place.
 *
 * zod compiles a fast parser for each object schema with `new Function` on its first use. A function invocation
 * parses each schema a handful of times before the process is recycled, so compiling costs more than it saves (about
 * 5 ms of a cold start here), and an app that never evaluates generated code is easier to reason about. config.ts,
 * which every function loads, imports this module first, so it runs before any schema is built.
 */
z.config({ jitless: true });

/** A zod error as one log line, each issue with the path it is about: `value.action.verb: Invalid option; …`. */
export function issuesText(error: z.ZodError): string {
    return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
}

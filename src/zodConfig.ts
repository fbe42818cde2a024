import * as z from 'zod';

/**
 * zod compiles a fast parser for each object schema with `new Function` on its first use. A function invocation
 * parses each schema a handful of times before the process is recycled, so compiling costs more than it saves (about
 * 5 ms of a cold start here), and an app that never evaluates generated code is easier to reason about. Imported first
 * by config.ts, which every function loads, so it runs before any schema is built.
 */
z.config({ jitless: true });

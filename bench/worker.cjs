'use strict';
/**
 * A stand-in for the Functions Node.js worker, for the cold-start benchmark: a fresh `node` runs this with the app's
 * entry files and one invocation to make. Through scripts/functions-host.cjs it loads the entries (registering their
 * functions), runs their appStart hooks and invokes one function the way the worker does, then prints the timings as
 * JSON on stdout.
 *
 *   node bench/worker.cjs '<json: { entries: string[], functionName, inputData, triggerMetadata? }>'
 *
 * Plain JavaScript, so nothing but node itself runs before the app's code.
 */
const started = process.hrtime.bigint();
const { installFunctionsHost } = require('../scripts/functions-host.cjs');

const host = installFunctionsHost();
const ms = (from, to = process.hrtime.bigint()) => Number(to - from) / 1e6;

async function main() {
    const job = JSON.parse(process.argv[2]);
    for (const entry of job.entries) {
        require(entry);
    }
    await host.runAppStart();
    const loaded = process.hrtime.bigint();
    const { response, logs } = await host.invoke(job.functionName, job.inputData, job.triggerMetadata);
    const done = process.hrtime.bigint();
    process.stdout.write(
        JSON.stringify({
            loadMs: ms(started, loaded),
            invokeMs: ms(loaded, done),
            totalMs: ms(started, done),
            response: response.returnValue ?? null,
            errors: logs.filter((l) => /^(error|Error)/i.test(l)),
            logs: logs.length,
        }),
    );
}

main().then(
    // Keep-alive sockets and SDK timers would hold the process open; the invocation is over.
    () => process.exit(0),
    (err) => {
        process.stderr.write(`${err && err.stack ? err.stack : String(err)}\n`);
        process.exit(1);
    },
);

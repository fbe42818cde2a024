'use strict';
/**
 * A stand-in for the Functions Node.js worker, for the cold-start benchmark: a fresh `node` runs this with the app's
 * entry files and one invocation to make. Through scripts/functions-host.cjs it loads the entries (registering their
 * functions), runs their appStart hooks and invokes one function the way the worker does, then prints the timings as
 * JSON on stdout.
 *
 *   node bench/worker.cjs '<json: { entries: string[], functionName, inputData, triggerMetadata? }>'
 *
 * Plain JavaScript, so nothing but node itself runs before the app's code. Besides the wall time of each phase, it
 * records the process's CPU time per phase (process.cpuUsage) and every outgoing HTTP request of the invocation
 * (diagnostics_channel, which node publishes whether or not anyone listens: subscribing adds no module), with its
 * origin, start, end and TLS handshake, so bench/coldStart.ts can say how much of the first event is waiting on the
 * emulators and how much is the app's own work.
 */
const started = process.hrtime.bigint();
// Since the process started (process.uptime, which loads nothing): node's own start-up, the same for every app.
const bootMs = process.uptime() * 1000;
const diagnostics = require('node:diagnostics_channel');
const { installFunctionsHost } = require('../scripts/functions-host.cjs');

const host = installFunctionsHost();
const ms = (from, to = process.hrtime.bigint()) => Number(to - from) / 1e6;
const cpuMs = (usage) => (usage.user + usage.system) / 1000;

/** @type {{ origin: string, method: string, path: string, startMs: number, endMs?: number, tlsMs?: number, status?: number }[]} */
const requests = [];
const open = new WeakMap();
diagnostics.subscribe('http.client.request.start', ({ request }) => {
    const entry = {
        origin: `${request.protocol}//${request.getHeader('host') ?? request.host}`,
        method: request.method,
        path: request.path.split('?')[0],
        startMs: ms(started),
    };
    requests.push(entry);
    open.set(request, entry);
    // Node publishes this once the request is ended, so its socket is there: a new TLS one still shakes hands.
    const socket = request.socket;
    if (socket && socket.encrypted && !socket._secureEstablished) {
        const from = ms(started);
        socket.once('secureConnect', () => (entry.tlsMs = ms(started) - from));
    }
    const end = () => (entry.endMs ??= ms(started));
    request.once('error', end);
    request.once('close', end);
});
diagnostics.subscribe('http.client.response.finish', ({ request, response }) => {
    const entry = open.get(request);
    if (entry) {
        entry.status = response.statusCode;
        response.once('end', () => (entry.endMs = ms(started)));
    }
});

async function main() {
    const job = JSON.parse(process.argv[2]);
    const cpu0 = process.cpuUsage();
    for (const entry of job.entries) {
        require(entry);
    }
    const required = process.hrtime.bigint();
    const cpu1 = process.cpuUsage();
    await host.runAppStart();
    const loaded = process.hrtime.bigint();
    const cpu2 = process.cpuUsage();
    const { response, logs } = await host.invoke(job.functionName, job.inputData, job.triggerMetadata);
    const done = process.hrtime.bigint();
    const cpu3 = process.cpuUsage();
    process.stdout.write(
        JSON.stringify({
            // To line the phases up with a `node --cpu-prof` profile of this process (same monotonic clock, in µs).
            startedUs: Number(started / 1000n),
            bootMs,
            requireMs: ms(started, required),
            appStartMs: ms(required, loaded),
            loadMs: ms(started, loaded),
            invokeMs: ms(loaded, done),
            totalMs: ms(started, done),
            cpu: {
                bootMs: cpuMs(cpu0),
                requireMs: cpuMs(cpu1) - cpuMs(cpu0),
                appStartMs: cpuMs(cpu2) - cpuMs(cpu1),
                invokeMs: cpuMs(cpu3) - cpuMs(cpu2),
            },
            invokeStartMs: ms(started, loaded),
            requests,
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

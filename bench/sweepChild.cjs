'use strict';
/**
 * One timer run of the sweep in a fresh node process, on the compiled app (dist/, as `npm run build` writes it), with
 * the app's settings in its environment: the process holds the app and nothing else (the emulators and Azurite run
 * in other processes), so its resident set is the sweep's. RSS is sampled every 20 ms with process.memoryUsage() from
 * before the app is loaded to after the run; prints one JSON line.
 */
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { setInterval, clearInterval, setTimeout } = require('node:timers');

const dist = process.argv[2];
const mb = (bytes) => bytes / (1024 * 1024);
let peak = process.memoryUsage().rss;
const sample = () => {
    peak = Math.max(peak, process.memoryUsage().rss);
};
const timer = setInterval(sample, 20);

async function main() {
    const startRss = process.memoryUsage().rss;
    const { getDeps } = require(path.join(dist, 'src', 'runtime.js'));
    const { sweep } = require(path.join(dist, 'src', 'workflow', 'sweep.js'));
    const deps = getDeps();
    const lines = [];
    const keep =
        (level) =>
        (...args) =>
            lines.push(`${level}: ${args.map(String).join(' ')}`);
    const log = { info: keep('info'), warn: keep('warn'), error: keep('error') };
    const loadedRss = process.memoryUsage().rss;
    const started = performance.now();
    const report = await sweep(deps, log);
    const seconds = (performance.now() - started) / 1000;
    await deps.telemetry.flush?.().catch(() => undefined);
    sample();
    clearInterval(timer);
    process.stdout.write(
        JSON.stringify({
            seconds,
            startRssMb: mb(startRss),
            loadedRssMb: mb(loadedRss),
            peakRssMb: mb(peak),
            report: {
                servers: report.servers,
                pendingPecs: report.pendingPecs,
                waiting: report.waiting.length,
                opened: report.opened.length,
                bypasses: report.bypasses.length,
                baselined: report.baselined.length,
                errors: report.errors,
                blind: report.blind,
                scopes: report.scopes,
            },
            warnings: lines.filter((l) => !l.startsWith('info')).slice(0, 5),
        }) + '\n',
    );
    // Then, apart from the figures (the parent has counted the sweep's reads by now), what its main parts cost alone:
    // listing every scope through the same provider, reading the requests in flight, scanning the connection marks.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { settleAll } = require(path.join(dist, 'src', 'workflow', 'concurrency.js'));
    const timed = async (work) => {
        const t = performance.now();
        const value = await work();
        return { seconds: (performance.now() - t) / 1000, value };
    };
    const scopes = deps.settings.watchedSubscriptionIds.flatMap((s) => deps.settings.watchedKinds.map((k) => [s, k]));
    const listing = await timed(() => settleAll(scopes, 4, ([s, k]) => deps.arm.listServersWithPecs(s, k)));
    const requests = await timed(async () => {
        let n = 0;
        for await (const _ of deps.requests.listForSweep()) {
            n++;
        }
        return n;
    });
    const marks = await timed(() => deps.marks.listMarked());
    process.stdout.write(
        JSON.stringify({
            listingSeconds: listing.seconds,
            requestsSeconds: requests.seconds,
            requestsInFlight: requests.value,
            marksScanSeconds: marks.seconds,
            marks: marks.value.size,
        }) + '\n',
    );
}

main().then(
    () => process.exit(0),
    (err) => {
        process.stderr.write(String(err && err.stack ? err.stack : err));
        process.exit(1);
    },
);

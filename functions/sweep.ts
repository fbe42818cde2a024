import { app, type InvocationContext, type Timer } from '@azure/functions';
import { observe } from '../src/observability/invocation';
import { getDeps } from '../src/runtime';
import { sweep } from '../src/workflow/sweep';

/**
 * Reconciles on a schedule (the SWEEP_SCHEDULE setting, bound as %SWEEP_SCHEDULE%): Pending PECs no event reported,
 * decisions made in the portal, removed PECs, reminders, expiry, lost applies and cards left behind. The host runs one
 * sweep at a time across instances (timer triggers hold a singleton lock), and a run missed while the app was down
 * runs at start-up (`useMonitor`). Failures of single items are logged and retried by the next run; the invocation
 * itself fails only if the sweep could not run at all.
 */
export async function sweepFunction(timer: Timer, context: InvocationContext): Promise<void> {
    await observe(context, {}, async (log) => {
        if (timer.isPastDue) {
            log.warn('Sweep is running late (the app was down or busy); catching up now');
        }
        const report = await sweep(getDeps(), log);
        if (report.blind) {
            // Nothing could be read (storage, or every ARM listing): fail the invocation so it shows as failed and alerts.
            throw new Error(
                `Sweep ${report.correlationId} could not run: ${report.errors.map((e) => e.message).join('; ')}`,
            );
        }
    });
}

app.timer('sweep', {
    schedule: '%SWEEP_SCHEDULE%',
    useMonitor: true,
    runOnStartup: false,
    handler: sweepFunction,
});

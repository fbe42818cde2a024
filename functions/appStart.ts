import { app } from '@azure/functions';
import { getConfig } from '../src/config';

/**
 * Validates every setting when the host starts, so a missing or malformed one stops the app with a message naming it
 * instead of failing on the first event.
 */
export function validateSettingsAtStart(): void {
    getConfig();
}

app.hook.appStart(validateSettingsAtStart);

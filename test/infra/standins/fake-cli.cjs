'use strict';
/**
 * A stand-in for `az` and `azd` on PATH (test/infra/hooks.tools.test.ts): records each call as one JSON line
 * {tool, args} in $PEC_GATE_FAKE_LOG, with every `@file` argument replaced by the file's content (the PowerShell hooks
 * pass JSON bodies through temporary files, because `az` is a .cmd on Windows and would mangle quotes), and answers
 * from the scenario in $PEC_GATE_FAKE_SCENARIO: the first rule whose `match` (a regular expression over the arguments
 * joined by spaces) fits prints its stdout/stderr and exits with its code; no rule: empty output, exit 0.
 *   node fake-cli.cjs <az|azd> args...
 */
const { appendFileSync, existsSync, readFileSync } = require('node:fs');

const [tool, ...args] = process.argv.slice(2);
const recorded = args.map((arg) => {
    if (arg.startsWith('@') && existsSync(arg.slice(1))) {
        return readFileSync(arg.slice(1), 'utf8');
    }
    return arg;
});
appendFileSync(process.env.PEC_GATE_FAKE_LOG, `${JSON.stringify({ tool, args: recorded })}\n`);

const scenario = JSON.parse(readFileSync(process.env.PEC_GATE_FAKE_SCENARIO, 'utf8'));
const line = [tool, ...recorded].join(' ');
const rule = (scenario.rules ?? []).find((r) => new RegExp(r.match).test(line));
if (rule?.stdout) {
    process.stdout.write(rule.stdout.endsWith('\n') ? rule.stdout : `${rule.stdout}\n`);
}
if (rule?.stderr) {
    process.stderr.write(`${rule.stderr}\n`);
}
process.exitCode = rule?.exitCode ?? 0;

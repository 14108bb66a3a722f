// Runs every browser end-to-end test file in turn (each starts its own programs on fresh ports) and
// prints one combined line, "e2e: N passed, N failed"; exits non-zero if any check or file failed.
//   node tests/e2e/run.mjs [FILE.mjs ...]     (default: all of them)
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const files = process.argv.length > 2 ? process.argv.slice(2) : ['face_login.mjs', 'liveness.mjs', 'spa.mjs', 'step_up.mjs', 'enrol_live.mjs', 'device.mjs', 'accounts.mjs'];
let passed = 0, failed = 0, broken = [];
for (const f of files) {
  console.log(`--- ${f}`);
  const r = spawnSync(process.execPath, [path.resolve(here, path.basename(f))], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  process.stdout.write(r.stdout ?? '');
  const m = /e2e [^\n]*: (\d+) passed, (\d+) failed/.exec(r.stdout ?? '');
  if (m) { passed += Number(m[1]); failed += Number(m[2]); } else { failed++; }
  if (r.status !== 0 || !m) broken.push(f);
}
if (broken.length) console.log(`failed files: ${broken.join(', ')}`);
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(broken.length ? 1 : 0);

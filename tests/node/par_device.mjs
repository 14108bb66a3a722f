// Node's `openid-client` (unchanged, its defaults: client_secret_post) against facegate's pushed
// authorization requests (RFC 9126) and device authorization grant (RFC 8628), driven by
// crates/facegate-server/tests/node_par_device.rs. Usage: node par_device.mjs CONFIG.json
//
// CONFIG.json: {"issuer", "client_id", "client_secret", "redirect_uri"}.
// Protocol (one JSON object per line):
//   1. stdout: {"authorization_url"} (built with PAR: client_id and request_uri only)
//   2. stdin:  the callback URL the browser was redirected to
//   3. stdout: {"verification_uri_complete", "user_code"} (a device authorization has started)
//   4. stdout: {"par_claims", "par_scope", "device_claims", "device_scope"} once the device grant
//      was approved and polled to its tokens.
import { webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import * as client from 'openid-client';

if (!globalThis.crypto) globalThis.crypto = webcrypto;

const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const readLine = () => new Promise((resolve, reject) => {
  const rl = createInterface({ input: process.stdin, terminal: false });
  let done = false;
  rl.once('line', (line) => { done = true; rl.close(); resolve(line.trim()); });
  rl.once('close', () => { if (!done) reject(new Error('stdin closed early')); });
});

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = new URL(cfg.issuer);
if (issuer.protocol !== 'https:' && !['127.0.0.1', 'localhost'].includes(issuer.hostname)) throw new Error('loopback only');
const config = await client.discovery(issuer, cfg.client_id, cfg.client_secret, undefined,
  issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined);

// 1-2. Code flow with PKCE, the request pushed first.
const codeVerifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const url = await client.buildAuthorizationUrlWithPAR(config, {
  redirect_uri: cfg.redirect_uri,
  scope: 'openid email',
  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});
emit({ authorization_url: url.href });
const callback = new URL(await readLine());
const par = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });

// 3-4. The device grant: start, let the test approve, poll (the library keeps the interval).
const device = await client.initiateDeviceAuthorization(config, { scope: 'openid profile' });
emit({ verification_uri_complete: device.verification_uri_complete, user_code: device.user_code });
const tokens = await client.pollDeviceAuthorizationGrant(config, device);
emit({ par_claims: par.claims(), par_scope: par.scope, device_claims: tokens.claims(), device_scope: tokens.scope });

// A relying party built on Node's `openid-client` (unchanged, no facegate-specific code), driven by
// crates/facegate-server/tests/node_rp.rs. Usage: node rp.mjs CONFIG.json
//
// CONFIG.json: {"issuer", "client_id", "client_secret", "redirect_uri"} for a confidential client
// registered as `facegate client add` does by default (client_secret_basic) with the scopes openid
// email profile offline_access. The library runs with its defaults (it sends client_secret_post).
//
// Protocol (one JSON object per line):
//   1. stdout: {"authorization_url", "code_verifier", "state", "nonce"}
//   2. stdin:  the callback URL the browser was redirected to (one line)
//   3. stdout: {"sub", "email", "id_token_claims", "refreshed", "introspection_active_before",
//               "introspection_active_after", ...}
// Any failure: the error goes to stderr and the exit status is non-zero.
import { webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import * as client from 'openid-client';

// openid-client uses the global Web Crypto API (at call time); Node 20+ has it, Node 18 (Debian
// bookworm's nodejs package) only behind a flag.
if (!globalThis.crypto) globalThis.crypto = webcrypto;

function fail(message) {
  throw new Error(message);
}

function readLine() {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin, terminal: false });
    let done = false;
    rl.once('line', (line) => {
      done = true;
      rl.close();
      resolve(line.trim());
    });
    rl.once('close', () => {
      if (!done) reject(new Error('stdin closed before the callback URL arrived'));
    });
  });
}

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main() {
  const path = process.argv[2] ?? fail('usage: node rp.mjs CONFIG.json');
  const cfg = JSON.parse(readFileSync(path, 'utf8'));
  for (const key of ['issuer', 'client_id', 'client_secret', 'redirect_uri']) {
    if (typeof cfg[key] !== 'string' || cfg[key] === '') fail(`config: missing ${key}`);
  }
  const issuer = new URL(cfg.issuer);
  // Plain http is only acceptable because the test server listens on loopback.
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(issuer.hostname);
  const insecure = issuer.protocol === 'http:' && loopback;
  if (issuer.protocol !== 'https:' && !insecure) fail(`refusing non-https, non-loopback issuer ${issuer}`);

  // Discovery (also checks that the document's issuer equals the URL discovered from).
  // openid-client's defaults: the client secret as metadata and no client authentication named, so
  // the library picks its default method (client_secret_post), whatever the client registered.
  const config = await client.discovery(
    issuer,
    cfg.client_id,
    cfg.client_secret,
    undefined,
    insecure ? { execute: [client.allowInsecureRequests] } : undefined,
  );
  const meta = config.serverMetadata();

  // Authorization request: code flow, PKCE S256, state and nonce.
  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: cfg.redirect_uri,
    scope: 'openid email profile offline_access',
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  emit({
    authorization_url: authorizationUrl.href,
    code_verifier: codeVerifier,
    state,
    nonce,
  });

  const callback = await readLine();
  if (!callback) fail('empty callback URL on stdin');

  // Code exchange: checks state, iss (RFC 9207), PKCE, and the ID token's signature (JWKS), iss,
  // aud, exp, iat, nonce and auth_time.
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims() ?? fail('no ID token claims');
  if (!tokens.refresh_token) fail('offline_access granted no refresh token');
  if (String(tokens.token_type).toLowerCase() !== 'bearer') fail(`token_type ${tokens.token_type}`);

  // UserInfo (openid-client checks that its sub equals the ID token's).
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

  // Refresh: a new access token and an ID token for the same subject.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  if (!refreshed.access_token || refreshed.access_token === tokens.access_token) {
    fail('refresh did not issue a new access token');
  }
  const refreshedClaims = refreshed.claims();
  if (refreshedClaims && refreshedClaims.sub !== claims.sub) {
    fail(`refreshed ID token sub ${refreshedClaims.sub} != ${claims.sub}`);
  }
  const refreshedUserinfo = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);

  // Introspection, revocation, introspection again — on the newest access token.
  if (!meta.introspection_endpoint) fail('discovery has no introspection_endpoint');
  if (!meta.revocation_endpoint) fail('discovery has no revocation_endpoint');
  const before = await client.tokenIntrospection(config, refreshed.access_token);
  if (before.active && before.sub !== undefined && before.sub !== claims.sub) {
    fail(`introspection sub ${before.sub} != ${claims.sub}`);
  }
  await client.tokenRevocation(config, refreshed.access_token, { token_type_hint: 'access_token' });
  const after = await client.tokenIntrospection(config, refreshed.access_token);

  // A revoked access token must no longer open the UserInfo endpoint.
  let userinfoAfterRevocationRejected = false;
  try {
    await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  } catch {
    userinfoAfterRevocationRejected = true;
  }

  emit({
    sub: claims.sub,
    email: userinfo.email ?? null,
    email_verified: userinfo.email_verified ?? null,
    preferred_username: userinfo.preferred_username ?? null,
    id_token_claims: claims,
    refreshed: true,
    refreshed_id_token: refreshedClaims !== undefined,
    refreshed_userinfo_sub: refreshedUserinfo.sub,
    scope: tokens.scope ?? null,
    introspection_active_before: before.active,
    introspection_client_id_before: before.client_id ?? null,
    introspection_active_after: after.active,
    userinfo_after_revocation_rejected: userinfoAfterRevocationRejected,
  });
}

main().then(
  () => process.exit(0),
  (err) => {
    const detail = err && typeof err === 'object'
      ? { name: err.name, message: err.message, code: err.code, error: err.error,
          error_description: err.error_description, status: err.status, cause: String(err.cause ?? '') }
      : { message: String(err) };
    process.stderr.write(`openid-client RP failed: ${JSON.stringify(detail)}\n${err?.stack ?? ''}\n`);
    process.exit(1);
  },
);

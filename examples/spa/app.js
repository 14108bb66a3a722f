// The single-page app: oidc-client-ts (global `oidc`, its browser bundle) does discovery, the code
// flow with PKCE and state, the token exchange and userinfo — all from the browser, cross-origin to
// facegate (which answers with CORS headers for registered clients' origins). Everything shown is
// set with textContent: nothing from a token becomes markup.
'use strict';

const $ = (id) => document.getElementById(id);

function status(text, error = false) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

// The ID token's payload, decoded for display (oidc-client-ts has already checked state, nonce, iss and aud).
function idTokenClaims(idToken) {
  const part = idToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  const json = decodeURIComponent(Array.from(atob(part), (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''));
  return JSON.parse(json);
}

const TIMES = new Set(['exp', 'iat', 'auth_time', 'nbf', 'updated_at']);
function fill(table, claims) {
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const [k, v] of Object.entries(claims)) {
    const tr = body.insertRow();
    tr.dataset.claim = k;
    const th = document.createElement('th');
    th.textContent = k;
    tr.appendChild(th);
    const td = tr.insertCell();
    let text = typeof v === 'string' ? v : JSON.stringify(v);
    if (TIMES.has(k) && typeof v === 'number') text += `  (${new Date(v * 1000).toISOString()})`;
    td.textContent = text;
  }
}

// A nonce for each sign-in: oidc-client-ts keeps it with the state and checks it in the ID token.
function nonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
const signIn = (manager) => manager.signinRedirect({ nonce: nonce() });

const METHODS = { face: 'your face', pwd: 'a password', mfa: 'more than one factor' };

async function main() {
  const config = await (await fetch('/config.json')).json();
  const manager = new oidc.UserManager({
    authority: config.authority,
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    post_logout_redirect_uri: config.post_logout_redirect_uri,
    response_type: 'code',
    scope: 'openid profile email',
    loadUserInfo: true,
    revokeTokensOnSignout: true,
    automaticSilentRenew: false,
    userStore: new oidc.WebStorageStateStore({ store: window.sessionStorage }),
  });

  const url = new URL(location.href);
  if (url.pathname === '/callback') {
    status('Finishing sign-in…');
    try {
      await manager.signinRedirectCallback();
    } catch (e) {
      status(`Sign-in did not finish: ${e.message ?? e}`, true);
      history.replaceState(null, '', '/');
      $('signed-out').hidden = false;
      $('sign-in').onclick = () => signIn(manager);
      return;
    }
    history.replaceState(null, '', '/');
  }

  const user = await manager.getUser();
  $('sign-in').onclick = () => signIn(manager);
  $('sign-out').onclick = async () => {
    status('Signing out…');
    await manager.signoutRedirect({ id_token_hint: user?.id_token });
  };
  if (!user || user.expired) {
    status('You are not signed in.');
    $('signed-out').hidden = false;
    return;
  }
  const claims = idTokenClaims(user.id_token);
  const profile = user.profile;
  $('who').textContent = profile.name || profile.preferred_username || claims.sub;
  $('how').textContent = (claims.amr ?? []).map((a) => METHODS[a] ?? a).join(' + ') + (claims.acr ? ` (acr ${claims.acr})` : '');
  fill($('claims'), claims);
  const fromUserinfo = Object.fromEntries(Object.entries(profile).filter(([k]) => !(k in claims) || k === 'sub'));
  fill($('userinfo'), fromUserinfo);
  status('Signed in.');
  $('signed-in').hidden = false;
}

main().catch((e) => status(`Something went wrong: ${e.message ?? e}`, true));

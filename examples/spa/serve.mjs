// The single-page app's static server: the page, its script and style, the oidc-client-ts browser
// bundle from node_modules, and /config.json (which facegate and which client id). Nothing else: the
// sign-in itself happens in the browser, between the page and facegate.
//
//   node serve.mjs [--issuer URL] [--client-id ID] [--listen HOST:PORT] [--public-url URL]
//   (or SPA_ISSUER, SPA_CLIENT_ID, SPA_LISTEN, SPA_PUBLIC_URL; defaults http://localhost:8080,
//   -, 127.0.0.1:8082, http://localhost:<port>)
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function option(name, env, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0 && process.argv[i + 1]) return process.argv[i + 1];
  return process.env[env] || fallback;
}

const issuer = option('issuer', 'SPA_ISSUER', 'http://localhost:8080').replace(/\/+$/, '');
const clientId = option('client-id', 'SPA_CLIENT_ID', '');
const listen = option('listen', 'SPA_LISTEN', '127.0.0.1:8082');
const colon = listen.lastIndexOf(':');
const host = listen.slice(0, colon);
const port = Number(listen.slice(colon + 1));
const publicUrl = option('public-url', 'SPA_PUBLIC_URL', `http://localhost:${port}`).replace(/\/+$/, '');
if (!clientId) {
  console.error('spa: a client id is needed (--client-id or SPA_CLIENT_ID): facegate client add --public ...');
  process.exit(2);
}
const issuerOrigin = new URL(issuer).origin;

const files = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/callback': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
  '/oidc-client-ts.min.js': ['node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js', 'text/javascript; charset=utf-8'],
};
const config = JSON.stringify({
  authority: issuer,
  client_id: clientId,
  redirect_uri: `${publicUrl}/callback`,
  post_logout_redirect_uri: `${publicUrl}/`,
});
const security = {
  'content-security-policy': `default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' ${issuerOrigin}; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', ...security }).end();
    return;
  }
  if (url.pathname === '/config.json') {
    res.writeHead(200, { 'content-type': 'application/json', ...security }).end(config);
    return;
  }
  const file = files[url.pathname];
  if (!file) {
    res.writeHead(404, { 'content-type': 'text/plain', ...security }).end('not found');
    return;
  }
  fs.readFile(path.join(here, file[0]), (err, body) => {
    if (err) {
      res.writeHead(500, { 'content-type': 'text/plain', ...security }).end(
        file[0].startsWith('node_modules') ? 'oidc-client-ts is not installed: npm ci --prefix examples/spa' : 'cannot read file');
      return;
    }
    res.writeHead(200, { 'content-type': file[1], ...security }).end(req.method === 'HEAD' ? undefined : body);
  });
});
server.listen(port, host, () => console.log(`spa: ${publicUrl} (listening on ${host}:${port}, issuer ${issuer})`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));

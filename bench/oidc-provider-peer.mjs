// The peer in bench/compare-oidc-provider.sh: panva's oidc-provider (9.x) with its in-memory
// adapter, opaque tokens, an RS256 signing key, and the same two clients facegate gets: a
// client_credentials client and a code-flow client (client_secret_basic).
// Usage: node oidc-provider-peer.mjs PORT CODES_FILE N_CODES
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

// Its in-memory adapter keeps 1,000 entries; the run needs every minted code (and its grant) and
// every issued token to stay, so the same adapter class gets the same LRU with room for them all.
const storage = new LRU({ maxSize: 10_000_000 });
const adapter = (model) => new MemoryAdapter(model, storage, 0);

const [port, codesFile, nCodes] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4] ?? 0)];
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  adapter,
  clients: [
    {
      client_id: 'bench-cc',
      client_secret: 'bench-cc-secret-0123456789abcdef0123456789',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'api',
    },
    {
      client_id: 'bench-rp',
      client_secret: 'bench-rp-secret-0123456789abcdef0123456789',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://localhost:9/cb'],
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'api'],
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  pkce: { required: () => false },
  ttl: { AccessToken: 3600, ClientCredentials: 3600, IdToken: 3600, AuthorizationCode: 600, Grant: 3600 },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
});

if (nCodes > 0) {
  // As facegate's mint_codes: each code with its own grant.
  const client = await provider.Client.find('bench-rp');
  const codes = [];
  for (let i = 0; i < nCodes; i += 1) {
    const grant = new provider.Grant({ accountId: 'bench', clientId: 'bench-rp' });
    grant.addOIDCScope('openid');
    const grantId = await grant.save();
    const code = new provider.AuthorizationCode({
      accountId: 'bench',
      client,
      grantId,
      scope: 'openid',
      redirectUri: 'http://localhost:9/cb',
      authTime: Math.floor(Date.now() / 1000),
    });
    codes.push(await code.save());
  }
  writeFileSync(codesFile, `${codes.join('\n')}\n`);
}

provider.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${issuer}\n`));

// A real OpenID Provider for live's OIDC sign-in tests: panva/oidc-provider, in memory.
//
//   node server.js --port 9000 --redirect-uri http://127.0.0.1:8080/auth/oidc/callback
//
// (or OIDC_TEST_PORT / OIDC_TEST_REDIRECT_URI). The issuer is http://127.0.0.1:<port>.
// It prints one line "listening <issuer>" on stdout once it accepts connections.
//
// Clients (all confidential, client_secret_basic, PKCE S256 required, same redirect URI):
//   live-test         ID tokens signed RS256: the relying party under test
//   live-test-es256   ID tokens signed ES256: the same, to exercise EC signatures
//   other-app         another relying party, whose tokens live-test must refuse
//
// Sign-in uses the provider's development interactions: a login form (any password) and
// a consent form. Accounts and their claims are in ACCOUNTS below; an unknown login signs
// in as a user with no live claims at all.

import { generateKeyPairSync } from 'node:crypto';
import { parseArgs } from 'node:util';

import { Provider } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_TEST_PORT ?? '' },
    'redirect-uri': { type: 'string', default: process.env.OIDC_TEST_REDIRECT_URI ?? '' },
  },
});

const port = Number.parseInt(args.port, 10);
const redirectUri = args['redirect-uri'];
if (!Number.isInteger(port) || port <= 0 || port > 65535 || !redirectUri) {
  console.error('usage: node server.js --port PORT --redirect-uri URI');
  process.exit(2);
}

const SECRETS = {
  'live-test': 'live-test-secret',
  'live-test-es256': 'live-test-es256-secret',
  'other-app': 'other-app-secret',
};

const ACCOUNTS = {
  sam: { name: 'Sam Supervisor', live_role: 'supervisor', live_teams: ['billing', 'sales'], groups: ['qa-supervisors'] },
  ari: { name: 'Ari Admin', live_role: 'admin', live_teams: [], groups: ['live-admins'] },
  dana: { name: 'Dana Auditor', live_role: 'auditor', live_teams: [], groups: ['works-council'] },
  alex: { name: 'Alex Agent', live_role: 'agent', live_teams: ['billing'], groups: ['agents-billing'] },
  nora: { name: 'Nora Nobody', groups: ['canteen'] },
};

function signingKey(kind, alg) {
  const { privateKey } = kind === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: `test-${alg.toLowerCase()}`, alg, use: 'sig' };
}

const client = (clientId, alg) => ({
  client_id: clientId,
  client_secret: SECRETS[clientId],
  redirect_uris: [redirectUri],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: alg,
});

const configuration = {
  clients: [
    client('live-test', 'RS256'),
    client('live-test-es256', 'ES256'),
    client('other-app', 'RS256'),
  ],
  jwks: { keys: [signingKey('rsa', 'RS256'), signingKey('ec', 'ES256')] },
  cookies: { keys: ['live-test-oidc-provider-cookie-key'] },
  // Every client must send an S256 code_challenge (RFC 7636), confidential or not.
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'live'],
  claims: {
    openid: ['sub'],
    profile: ['name'],
    live: ['live_role', 'live_teams', 'groups'],
  },
  // Put the scope-granted claims in the ID token itself, not only at userinfo, so the
  // relying party can map roles from the ID token (OIDC Core 5.4 allows either).
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
  },
  ttl: {
    IdToken: 300,
    AccessToken: 300,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 600,
    Grant: 600,
  },
  async findAccount(_ctx, sub) {
    const account = ACCOUNTS[sub] ?? { name: sub };
    return {
      accountId: sub,
      async claims() {
        return { sub, ...account };
      },
    };
  },
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, configuration);
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

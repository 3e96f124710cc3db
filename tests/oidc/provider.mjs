// A real OpenID provider for tests/console_oidc.rs: oidc-provider (the
// certified npm package) on 127.0.0.1, plain http, with one static client
// (pushgate's), its development login form (any password), consent given
// without asking, and four people with a `pushgate_role` claim. Prints
// "ready <issuer>" when it listens.
//
// Environment: NPM_DIR (tests/oidc/install.sh), PORT, CLIENT_ID,
// CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_URI.
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const from = (pkg, entry) => import(pathToFileURL(path.join(env('NPM_DIR'), 'node_modules', pkg, entry)).href);
const { default: Provider } = await from('oidc-provider', 'lib/index.js');
const jose = await from('jose', 'dist/webapi/index.js');

const port = Number(env('PORT'));
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signing = { ...(await jose.exportJWK(privateKey)), kid: 'provider-rs256', alg: 'RS256', use: 'sig' };

const people = {
  anna: { name: 'Anna de Beheerder', preferred_username: 'anna', pushgate_role: ['pushgate-beheer', 'medewerker'] },
  bram: { name: 'Bram "<b>" Laborant', preferred_username: 'bram', pushgate_role: 'pushgate-gebruiker' },
  cees: { name: 'Cees Zonder Rol', preferred_username: 'cees', pushgate_role: ['medewerker'] },
  dirk: { preferred_username: 'dirk.v', pushgate_role: ['pushgate-gebruiker'] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('CLIENT_ID'),
    client_secret: env('CLIENT_SECRET'),
    redirect_uris: [env('REDIRECT_URI')],
    post_logout_redirect_uris: [env('POST_LOGOUT_URI')],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signing] },
  cookies: { keys: ['tests-only-cookie-key'] },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username', 'pushgate_role'] },
  // the profile claims in the ID token itself, not only at userinfo
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  async findAccount(ctx, id) {
    const claims = people[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
  },
  // a first-party client: consent is given, never asked
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile');
    await grant.save();
    return grant;
  },
});

http.createServer(provider.callback()).listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});

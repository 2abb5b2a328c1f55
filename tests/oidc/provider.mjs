// Test identity provider: oidc-provider with the client credentials grant issuing JWT access tokens (ES256) for one
// resource (the gateway's audience). Each client stands for a user: its roles, groups and amr become token claims.
// Usage: node provider.mjs <port> <audience> <keys.json> [console redirect URI]
// (keys.json: {"keys":[private JWKs]}). With a redirect URI, the client "ktzt-console" signs people in to the SOC console by
// the authorization code flow (PKCE), through the provider's development login page; their console roles are below.
import Provider from 'oidc-provider';
import { readFileSync } from 'node:fs';

const [port, audience, keysFile, consoleRedirect] = process.argv.slice(2);
const consoleRoles = { 'sso-admin': ['soc-admin'], 'sso-analyst': ['soc-analyst'] };
const issuer = `http://127.0.0.1:${port}`;
const users = {
  alice: { roles: ['payments'], groups: ['finance'], amr: ['pwd', 'otp'] },
  bob: { roles: ['payments'], groups: ['finance'], amr: ['pwd'] },
  carol: { roles: ['subscriber-support'], groups: [], amr: ['pwd', 'hwk'] },
  dave: { roles: ['noc'], groups: ['network-ops'], amr: ['pwd'] },
};

const provider = new Provider(issuer, {
  clients: [
    ...Object.keys(users).map((id) => ({
      client_id: id,
      client_secret: `${id}-secret`,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      id_token_signed_response_alg: 'ES256',
    })),
    ...(consoleRedirect ? [{
      client_id: 'ktzt-console',
      client_secret: 'ktzt-console-secret',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [consoleRedirect],
      id_token_signed_response_alg: 'ES256',
    }] : []),
  ],
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, preferred_username: id, roles: consoleRoles[id] || [] }),
  }),
  claims: { openid: ['sub'], profile: ['preferred_username'], roles: ['roles'] },
  scopes: ['openid', 'profile', 'roles'],
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  cookies: { keys: ['test-only-cookie-key'] },
  jwks: JSON.parse(readFileSync(keysFile, 'utf8')),
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'apps:read apps:write',
        audience: resource,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => {
    const user = users[token.clientId];
    return user ? { roles: user.roles, groups: user.groups, amr: user.amr } : {};
  },
});
provider.proxy = false;
provider.listen(Number(port), '127.0.0.1', () => console.log(`listening ${issuer}`));

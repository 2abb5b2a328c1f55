// Test identity provider: oidc-provider with the client credentials grant issuing JWT access tokens (ES256) for one
// resource (the gateway's audience). Each client stands for a user: its roles, groups and amr become token claims.
// Usage: node provider.mjs <port> <audience> <keys.json> [console redirect URI]
// (keys.json: {"keys":[private JWKs]}). With a redirect URI, the client "ktzt-console" signs people in to the SOC console by
// the authorization code flow (PKCE), through the provider's development login page; their console roles are below.
//
// Entra ID's shape (environment ENTRA_TENANT=<tenant id>, TLS_CERT and TLS_KEY PEM files): served over HTTPS under
// /<tenant>/v2.0 so the issuer is https://127.0.0.1:<port>/<tenant>/v2.0, as Entra's v2.0 endpoint is for a tenant, and
// access tokens carry what Entra's do: ver 2.0, tid, oid, azp, and either roles (application permissions) or scp
// (delegated scopes; the client "scoped" has only scp, the client "bare" neither).
import Provider from 'oidc-provider';
import { readFileSync } from 'node:fs';
import https from 'node:https';

const [port, audience, keysFile, consoleRedirect] = process.argv.slice(2);
const consoleRoles = { 'sso-admin': ['soc-admin'], 'sso-analyst': ['soc-analyst'] };
const tenant = process.env.ENTRA_TENANT;
const mount = tenant ? `/${tenant}/v2.0` : '';
const issuer = tenant ? `https://127.0.0.1:${port}${mount}` : `http://127.0.0.1:${port}`;
const users = {
  alice: { roles: ['payments'], groups: ['finance'], amr: ['pwd', 'otp'] },
  bob: { roles: ['payments'], groups: ['finance'], amr: ['pwd'] },
  carol: { roles: ['subscriber-support'], groups: [], amr: ['pwd', 'hwk'] },
  dave: { roles: ['noc'], groups: ['network-ops'], amr: ['pwd'] },
  ...(tenant ? { scoped: { scp: 'apps.read', groups: [], amr: ['pwd'] }, bare: { groups: [], amr: ['pwd'] } } : {}),
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
      defaultResource: () => (tenant ? `api://${audience}` : audience),
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'apps:read apps:write',
        // Entra's v2.0 tokens name the application by its client id, requested as api://<client id>.
        audience: tenant ? resource.replace(/^api:\/\//, '') : resource,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => {
    const user = users[token.clientId];
    if (!user) return {};
    const claims = { roles: user.roles, groups: user.groups, amr: user.amr };
    if (!tenant) return claims;
    // Entra v2.0 access tokens: no 'scope', but 'scp' for delegated and 'roles' for application permissions.
    return { ...claims, ver: '2.0', tid: tenant, oid: `00000000-0000-0000-0000-${token.clientId.padStart(12, '0').slice(-12)}`, azp: token.clientId, scp: user.scp, scope: undefined };
  },
});
provider.proxy = false;
if (tenant) {
  const callback = provider.callback();
  https.createServer({ cert: readFileSync(process.env.TLS_CERT), key: readFileSync(process.env.TLS_KEY) }, (req, res) => {
    if (!req.url.startsWith(mount + '/')) { res.statusCode = 404; res.end(); return; }
    req.originalUrl = req.url; // oidc-provider's mount detection: what was stripped is the mount path
    req.url = req.url.slice(mount.length);
    callback(req, res);
  }).listen(Number(port), '127.0.0.1', () => console.log(`listening ${issuer}`));
} else {
  provider.listen(Number(port), '127.0.0.1', () => console.log(`listening ${issuer}`));
}

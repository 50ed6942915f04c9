// A real OpenID provider (the npm package oidc-provider) for the bus's tests: it issues
// JWT access tokens to applications (client credentials) for the bus's API audience, and
// logs people in (authorization code with PKCE, required of every client) through its
// development login and consent forms: any login and password are accepted, the login
// becomes the subject and the email; a login starting with "unverified" has an
// unverified email.
// Usage: node provider.mjs PORT CLIENTS_JSON   (prints "ready ISSUER" once listening)
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientsJson] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const audience = process.env.DEMAT_OIDC_AUDIENCE || 'urn:demat-bus:api';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'demat-test', use: 'sig', alg: 'RS256' };

const findAccount = (ctx, id) => ({
  accountId: id,
  claims: () => ({
    sub: id, email: id, email_verified: !id.startsWith('unverified'),
    preferred_username: id.split('@')[0].toLowerCase(), name: `Agent ${id}`,
  }),
});

const provider = new Provider(issuer, {
  clients: JSON.parse(clientsJson),
  jwks: { keys: [jwk] },
  findAccount,
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username', 'name'] },
  scopes: ['openid', 'email', 'profile', 'api'],
  pkce: { required: () => true },
  cookies: { keys: [generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    .export({ format: 'jwk' }).d] },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // applications get tokens for the API; people's logins, a token for userinfo
      defaultResource: (ctx, client) => (client.grantTypes.includes('client_credentials')
        ? audience : undefined),
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api', audience, accessTokenTTL: Number(process.env.DEMAT_OIDC_TTL || 300),
        accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));

// A real OpenID provider (the npm package oidc-provider) for the bus's tests: it issues
// JWT access tokens to applications (client credentials) for the bus's API audience.
// Usage: node provider.mjs PORT CLIENTS_JSON   (prints "ready ISSUER" once listening)
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientsJson] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const audience = process.env.DEMAT_OIDC_AUDIENCE || 'urn:demat-bus:api';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'demat-test', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: JSON.parse(clientsJson),
  jwks: { keys: [jwk] },
  scopes: ['openid', 'api'],
  cookies: { keys: [generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    .export({ format: 'jwk' }).d] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api', audience, accessTokenTTL: Number(process.env.DEMAT_OIDC_TTL || 300),
        accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));

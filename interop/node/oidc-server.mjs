// A real OAuth 2.0 authorization server (npm `oidc-provider` 9.x) for the
// etdi-auth integration tests. It is never a production deployment: keys are
// generated at start-up, clients are fixed, and it listens on loopback only.
//
// Started by etdi-auth/tests/interop_oidc_provider.rs. Configuration comes from
// environment variables so the test owns every secret:
//   ETDI_CLIENT_SECRET   secret of the client_secret_basic / _post clients
//   ETDI_CLIENT_JWK      public JWK (JSON) of the private_key_jwt client
// On success it prints one JSON line on stdout:
//   {"issuer": "http://127.0.0.1:PORT", "port": PORT}
// and serves until stdin closes or it is killed.

import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

// Resource indicators (RFC 8707) the tests ask for, and what each one gets.
const RESOURCES = {
  'https://rs256.mcp.test/mcp': { format: 'jwt', alg: 'RS256' },
  'https://es256.mcp.test/mcp': { format: 'jwt', alg: 'ES256' },
  'https://opaque.mcp.test/mcp': { format: 'opaque' },
};
const SCOPE = 'tools:read tools:call';

function signingJwk(type, options, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig' };
}

const secret = process.env.ETDI_CLIENT_SECRET;
if (!secret) {
  console.error('ETDI_CLIENT_SECRET is not set');
  process.exit(2);
}
const clientJwk = process.env.ETDI_CLIENT_JWK ? JSON.parse(process.env.ETDI_CLIENT_JWK) : undefined;

const common = {
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  scope: SCOPE,
};
const clients = [
  { ...common, client_id: 'etdi-basic', client_secret: secret, token_endpoint_auth_method: 'client_secret_basic' },
  { ...common, client_id: 'etdi-post', client_secret: secret, token_endpoint_auth_method: 'client_secret_post' },
];
if (clientJwk) {
  clients.push({
    ...common,
    client_id: 'etdi-pkjwt',
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: clientJwk.alg ?? 'ES256',
    jwks: { keys: [clientJwk] },
  });
}

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients,
    jwks: {
      keys: [
        signingJwk('rsa', { modulusLength: 2048 }, 'interop-rsa'),
        signingJwk('ec', { namedCurve: 'P-256' }, 'interop-p256'),
      ],
    },
    scopes: SCOPE.split(' '),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resourceIndicator) {
          const resource = RESOURCES[resourceIndicator];
          if (!resource) throw new errors.InvalidTarget();
          const info = { scope: SCOPE, audience: resourceIndicator, accessTokenTTL: 300 };
          if (resource.format === 'jwt') {
            return { ...info, accessTokenFormat: 'jwt', jwt: { sign: { alg: resource.alg } } };
          }
          return { ...info, accessTokenFormat: 'opaque' };
        },
      },
    },
    // Loopback HTTP only: the tests run without TLS on 127.0.0.1.
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
  });
  // The provider's own warnings about development defaults go to stderr;
  // errors surface in the HTTP responses the tests assert on.
  provider.on('server_error', (ctx, err) => console.error('server_error', err));

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});

// The harness closes stdin when it is done; exit then so no server outlives it.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));

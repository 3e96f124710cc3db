// A deliberately broken OpenID provider for tests/console_oidc.rs: it
// answers every authorization request at once (no login) and its token
// endpoint hands out the ID token `GET /mode?m=<mode>` asked for — good
// ones signed RS256, PS256 or ES256, and the bad ones pushgate must refuse:
// another audience, expired, unsigned, HMAC with the client secret, wrong
// nonce, another issuer, a tampered payload, an unpublished key. It
// accepts only client_secret_post, as some providers do. `GET /stats`
// counts the fetches of its keys. Prints "ready <issuer>".
//
// Environment: NPM_DIR, PORT, CLIENT_ID, CLIENT_SECRET.
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const jose = await import(pathToFileURL(path.join(env('NPM_DIR'), 'node_modules', 'jose', 'dist/webapi/index.js')).href);

const port = Number(env('PORT'));
const issuer = `http://127.0.0.1:${port}`;
const clientId = env('CLIENT_ID');
const secret = env('CLIENT_SECRET');

async function key(alg, kid) {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, jwk: { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' } };
}
const keys = {
  rs: await key('RS256', 'r1'),
  ps: await key('PS256', 'p1'),
  es: await key('ES256', 'e1'),
  rotated: await key('RS256', 'r2'),
  rogue: await key('RS256', 'rogue'),
};
// an encryption key in the set, to be skipped
const enc = { ...(await jose.exportJWK((await jose.generateKeyPair('RSA-OAEP', { extractable: true })).publicKey)), kid: 'enc', alg: 'RSA-OAEP', use: 'enc' };

let mode = 'ok';
let published = ['rs', 'ps', 'es'];
const stats = { jwks: 0, discovery: 0 };
const codes = new Map();

const b64url = (buf) => Buffer.from(buf).toString('base64url');

async function idToken(login) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: issuer, aud: clientId, sub: 'fien', name: 'Fien Fake', pushgate_role: 'pushgate-gebruiker',
    exp: now + 300, iat: now, nonce: login.nonce,
  };
  const sign = (c, k = keys.rs) => new jose.SignJWT(c).setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT' }).sign(k.privateKey);
  switch (mode) {
    case 'ok': return sign(claims);
    case 'ps256': return sign(claims, keys.ps);
    case 'es256': return sign(claims, keys.es);
    case 'rotated': return sign(claims, keys.rotated);
    case 'wrong_aud': return sign({ ...claims, aud: 'another-application' });
    case 'several_aud': return sign({ ...claims, aud: [clientId, 'another-application'] });
    case 'expired': return sign({ ...claims, exp: now - 3600, iat: now - 7200 });
    case 'wrong_nonce': return sign({ ...claims, nonce: 'not-the-nonce' });
    case 'wrong_iss': return sign({ ...claims, iss: 'http://127.0.0.1:1/another-issuer' });
    case 'future_iat': return sign({ ...claims, iat: now + 3600 });
    case 'rogue': return sign(claims, keys.rogue);
    case 'none': {
      const header = b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }));
      return `${header}.${b64url(JSON.stringify(claims))}.`;
    }
    case 'hs256':
      return new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'r1' }).sign(new TextEncoder().encode(secret));
    case 'tampered': {
      const [h, , s] = (await sign(claims)).split('.');
      const forged = b64url(JSON.stringify({ ...claims, pushgate_role: 'pushgate-beheer', name: 'Mallory' }));
      return `${h}.${forged}.${s}`;
    }
    default: throw new Error(`unknown mode ${mode}`);
  }
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function body(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return new URLSearchParams(data);
}

http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      stats.discovery += 1;
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'PS256', 'ES256'],
        token_endpoint_auth_methods_supported: ['client_secret_post'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (url.pathname === '/jwks') {
      stats.jwks += 1;
      return json(res, 200, { keys: [enc, ...published.map((k) => keys[k].jwk)] });
    }
    if (url.pathname === '/mode') {
      mode = url.searchParams.get('m');
      if (mode === 'rotated' && !published.includes('rotated')) published = [...published, 'rotated'];
      return json(res, 200, { mode });
    }
    if (url.pathname === '/stats') return json(res, 200, stats);
    if (url.pathname === '/authorize') {
      const p = url.searchParams;
      const back = new URL(p.get('redirect_uri'));
      if (p.get('client_id') !== clientId || p.get('response_type') !== 'code' || p.get('code_challenge_method') !== 'S256') {
        back.searchParams.set('error', 'invalid_request');
      } else if (mode === 'deny') {
        back.searchParams.set('error', 'access_denied');
        back.searchParams.set('error_description', 'The user <script>alert(1)</script> said no');
      } else {
        const code = crypto.randomBytes(16).toString('hex');
        codes.set(code, { nonce: p.get('nonce'), challenge: p.get('code_challenge'), redirect: p.get('redirect_uri') });
        back.searchParams.set('code', code);
      }
      back.searchParams.set('state', p.get('state'));
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      const p = await body(req);
      if (req.headers.authorization || p.get('client_id') !== clientId || p.get('client_secret') !== secret) {
        return json(res, 401, { error: 'invalid_client', error_description: 'client_secret_post only' });
      }
      const login = codes.get(p.get('code'));
      codes.delete(p.get('code'));
      const verifier = p.get('code_verifier') || '';
      const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
      if (!login || login.challenge !== challenge || login.redirect !== p.get('redirect_uri') || mode === 'bad_code') {
        return json(res, 400, { error: 'invalid_grant', error_description: 'code, verifier or redirect_uri wrong' });
      }
      return json(res, 200, { access_token: 'at-not-used', token_type: 'Bearer', expires_in: 300, id_token: await idToken(login) });
    }
    res.writeHead(404);
    res.end();
  } catch (e) {
    json(res, 500, { error: 'server_error', error_description: String(e) });
  }
}).listen(port, '127.0.0.1', () => console.log(`ready ${issuer}`));

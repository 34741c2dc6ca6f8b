// A real OpenID provider (the certified oidc-provider package) for the gateway's tests.
// Configured by a JSON file (argv[2]): port, client, users; control endpoints under /test/
// let a test change a user's groups, amr and auth age, send a back-channel logout, and
// tamper with the next ID token (issuer, audience, expiry, nonce, signature).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${cfg.port}/`;

async function signingKey(path) {
  if (path && existsSync(path)) return JSON.parse(readFileSync(path, 'utf8'));
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };
  if (path) writeFileSync(path, JSON.stringify(jwk));
  return jwk;
}

const jwk = await signingKey(cfg.keys_file);
const foreign = await signingKey(null);
const users = cfg.users;
let tamper = null;

const provider = new Provider(issuer, {
  clients: [{
    client_id: cfg.client_id, client_secret: cfg.client_secret,
    redirect_uris: [cfg.redirect_uri], post_logout_redirect_uris: [cfg.post_logout_redirect_uri],
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    token_endpoint_auth_method: cfg.token_auth_method || 'client_secret_basic',
    backchannel_logout_uri: cfg.backchannel_logout_uri, backchannel_logout_session_required: true, require_auth_time: true,
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: ['csrgw-test-idp-cookie-key'] },
  claims: { openid: ['sub'], profile: ['preferred_username', 'name', 'given_name', 'family_name'],
            email: ['email', 'email_verified'], groups: ['groups'], amr: null, acr: null },
  conformIdTokenClaims: false,
  acrValues: ['silver', 'gold'],  // a user's acr (set through /test/user) is in the ID token
  features: { devInteractions: { enabled: false }, claimsParameter: { enabled: true }, backchannelLogout: { enabled: true },
              rpInitiatedLogout: { enabled: true } },
  pkce: { required: () => true },
  // everything here is on loopback, which the provider's SSRF guard refuses by design
  fetch: (url, options) => { delete options.dispatcher; return globalThis.fetch(url, options); },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  // every refresh rotates the token; a second use of a used one revokes the grant (theft)
  rotateRefreshToken: true,
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { IdToken: 3600, AccessToken: 3600, RefreshToken: 86400, Session: 86400, Grant: 86400 },
  async findAccount(ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return { accountId: id, async claims() {
      return { sub: id, preferred_username: id, email: user.email, email_verified: true,
               name: user.name || id, groups: user.groups };
    } };
  },
  async loadExistingGrant(ctx) {  // a first-party client: no consent screen
    const { Grant } = ctx.oidc.provider;
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const found = await Grant.find(grantId);
      if (found) return found;
    }
    const grant = new Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile email groups');
    grant.addOIDCClaims(['preferred_username', 'email', 'groups', 'amr', 'acr', 'auth_time']);
    await grant.save();
    return grant;
  },
});
provider.proxy = false;

function page(uid, error) {
  return `<!doctype html><html><head><title>Test IdP sign-in</title></head><body>
<h1>Test IdP</h1>${error ? `<p id="error">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label>Login <input name="login" id="login" autofocus></label>
<label>Password <input name="password" id="password" type="password"></label>
<button type="submit" id="submit">Sign in</button></form></body></html>`;
}

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return (req.headers['content-type'] || '').includes('json')
    ? JSON.parse(text || '{}') : Object.fromEntries(new URLSearchParams(text));
}

provider.use(async (ctx, next) => {
  const interaction = ctx.path.match(/^\/interaction\/([\w-]+)(\/login)?$/);
  if (interaction) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (ctx.method === 'GET') { ctx.type = 'html'; ctx.body = page(details.uid); return; }
    const form = await body(ctx.req);
    const user = users[form.login];
    if (!user || user.password !== form.password) {
      ctx.status = 401; ctx.type = 'html'; ctx.body = page(details.uid, 'Invalid login'); return;
    }
    const ts = Math.floor(Date.now() / 1000) - (user.auth_age || 0);
    const result = { login: { accountId: form.login, ts, amr: user.amr || ['pwd'], acr: user.acr } };
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.status = 303; ctx.redirect(to); return;
  }
  if (ctx.path.startsWith('/test/') && ctx.method === 'POST') {
    const data = await body(ctx.req);
    if (ctx.path === '/test/user') Object.assign(users[data.id], data.changes);
    else if (ctx.path === '/test/tamper') tamper = data;
    else if (ctx.path === '/test/backchannel') {
      const client = await provider.Client.find(cfg.client_id);
      try { await client.backchannelLogout(data.sub, data.sid); } catch (err) {
        ctx.status = 502; ctx.body = { error: String(err) }; return;
      }
    } else { ctx.status = 404; return; }
    ctx.body = { ok: true }; return;
  }
  await next();
  if (ctx.path === '/token' && tamper && ctx.body && ctx.body.id_token) {
    const change = tamper; tamper = null;
    const claims = { ...jose.decodeJwt(ctx.body.id_token), ...(change.claims || {}) };
    const key = change.foreign ? foreign : jwk;
    const kid = change.kid || jwk.kid;
    ctx.body = { ...ctx.body, id_token: await new jose.SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid }).sign(await jose.importJWK(key, 'RS256')) };
  }
});

provider.listen(cfg.port, '127.0.0.1', () => console.log(`ready ${issuer}`));

// A real OpenID Connect provider (the `oidc-provider` package, pinned in package.json) for Cairn's
// sign-in tests, started by tests/oidc/servers.py on a free port. Its settings come as JSON in
// OIDC_TEST_CONFIG: {port, client: {client_id, client_secret, redirect_uris, post_logout_redirect_uris},
// accounts: {login: {email, name, groups}}}. Any password signs an account in (the package's
// development interactions); a login that names no account is refused by findAccount.
import Provider from 'oidc-provider';

const settings = JSON.parse(process.env.OIDC_TEST_CONFIG);
const issuer = `http://127.0.0.1:${settings.port}`;

const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head>
<body><h1>${title}</h1>${body}</body></html>`;

const configuration = {
  clients: [{
    ...settings.client,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  cookies: { keys: ['cairn-test-oidc-provider'] },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out of the test provider?',
          `${form}<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out of the test provider', '');
      },
    },
  },
  async findAccount(ctx, id) {
    const account = settings.accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: account.email, email_verified: true, name: account.name, groups: account.groups };
      },
    };
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Provider error', `<pre>${JSON.stringify(out)}</pre>`);
  },
};

const provider = new Provider(issuer, configuration);
provider.listen(settings.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

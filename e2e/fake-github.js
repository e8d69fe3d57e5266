// A local stand-in for GitHub's OAuth and REST endpoints, speaking the same protocol, for
// the browser tests (no network reaches github.com here). It approves every authorisation
// as one GitHub user whose verified primary email is the admin's.
const http = require('node:http');
const crypto = require('node:crypto');

const port = Number(process.env.FAKE_GITHUB_PORT || 7395);
const codes = new Map(); // code -> PKCE challenge

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

http
  .createServer((req, res) => {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      const code = crypto.randomBytes(12).toString('hex');
      codes.set(code, url.searchParams.get('code_challenge'));
      const back = new URL(url.searchParams.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state'));
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      return req.on('end', () => {
        const form = new URLSearchParams(body);
        const challenge = codes.get(form.get('code'));
        codes.delete(form.get('code'));
        const digest = crypto.createHash('sha256').update(form.get('code_verifier') || '').digest('base64url');
        if (!challenge || digest !== challenge) {
          return json(res, 200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
        }
        return json(res, 200, { access_token: 'gho_e2e_token', token_type: 'bearer', scope: 'read:user,user:email' });
      });
    }
    const authorised = req.headers.authorization === 'Bearer gho_e2e_token';
    if (req.method === 'GET' && url.pathname === '/user') {
      return authorised ? json(res, 200, { id: 1001, login: 'ada', name: 'Ada Lovelace' }) : json(res, 401, { message: 'Bad credentials' });
    }
    if (req.method === 'GET' && url.pathname === '/user/emails') {
      return authorised
        ? json(res, 200, [{ email: 'ada@example.com', primary: true, verified: true, visibility: 'private' }])
        : json(res, 401, { message: 'Bad credentials' });
    }
    if (url.pathname === '/health') return json(res, 200, { ok: true });
    return json(res, 404, { message: 'Not Found' });
  })
  .listen(port, '127.0.0.1');

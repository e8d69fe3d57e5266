// A local stand-in for GitHub's OAuth and REST endpoints, speaking the same protocol, for
// the browser tests (no network reaches github.com here). It approves every authorisation
// as one GitHub user whose verified primary email is the admin's, holds one private
// repository (ada/shop, served over git's smart HTTP by the real `git http-backend`, Basic
// credentials `x-access-token:<token>` as GitHub takes them), records the webhooks,
// Deployments, statuses and comments Railyard makes (`GET /_calls` lists them).
const http = require('node:http');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawn } = require('node:child_process');

const port = Number(process.env.FAKE_GITHUB_PORT || 7395);
const codes = new Map(); // code -> PKCE challenge
const calls = []; // { method, path, body }
let nextId = 100;

// ada/shop: a small Node.js app on main, and a develop branch.
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-github-'));
const bare = path.join(root, 'git', 'ada', 'shop.git');
const work = path.join(root, 'work');
fs.mkdirSync(bare, { recursive: true });
fs.mkdirSync(work, { recursive: true });
const git = (cwd, ...args) => execFileSync('git', args, { cwd, stdio: 'pipe', env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null' } }).toString().trim();
git(bare, 'init', '-q', '--bare');
git(work, 'init', '-q', '-b', 'main');
fs.writeFileSync(path.join(work, 'railyard.toml'), 'start = "node server.js"\n');
fs.writeFileSync(path.join(work, 'server.js'), "require('http').createServer((q, s) => s.end('shop from GitHub')).listen(process.env.PORT, '127.0.0.1');\n");
git(work, 'add', '.');
git(work, '-c', 'user.name=Ada', '-c', 'user.email=ada@example.com', 'commit', '-q', '-m', 'First version');
git(work, 'push', '-q', bare, 'main', 'main:develop');
const head = git(work, 'rev-parse', 'HEAD');

const readBody = (req) => new Promise((done) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => done(Buffer.concat(chunks)));
});

function serveGit(req, res, url) {
  const expected = 'Basic ' + Buffer.from('x-access-token:gho_e2e_token').toString('base64');
  if (req.headers.authorization !== expected) {
    res.writeHead(401, { 'www-authenticate': 'Basic realm="GitHub"' });
    return res.end('Authentication failed');
  }
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: path.join(root, 'git'),
      GIT_HTTP_EXPORT_ALL: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      REQUEST_METHOD: req.method,
      PATH_INFO: url.pathname,
      QUERY_STRING: url.search.replace(/^\?/, ''),
      CONTENT_TYPE: req.headers['content-type'] || '',
      GIT_PROTOCOL: req.headers['git-protocol'] || '',
      HTTP_CONTENT_ENCODING: req.headers['content-encoding'] || '',
    },
  });
  req.pipe(child.stdin);
  const out = [];
  child.stdout.on('data', (c) => out.push(c));
  child.on('close', () => {
    const all = Buffer.concat(out);
    const split = all.indexOf('\r\n\r\n');
    const headers = {};
    let status = 200;
    for (const line of all.slice(0, split).toString().split('\r\n')) {
      const [name, ...rest] = line.split(':');
      if (!name) continue;
      if (name.toLowerCase() === 'status') status = Number(rest.join(':').trim().split(' ')[0]);
      else headers[name.trim()] = rest.join(':').trim();
    }
    res.writeHead(status, headers);
    res.end(all.slice(split + 4));
  });
}

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
    if (url.pathname.startsWith('/ada/shop.git/')) return serveGit(req, res, url);
    if (url.pathname === '/_calls') return json(res, 200, { calls, head });
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
    if (!authorised) return json(res, 401, { message: 'Bad credentials' });
    if (req.method === 'GET' && url.pathname === '/user/repos') {
      return json(res, 200, [
        { id: 1, full_name: 'ada/shop', private: true, default_branch: 'main', description: 'The shop' },
        { id: 2, full_name: 'ada/notes', private: false, default_branch: 'main', description: null },
      ]);
    }
    if (req.method === 'GET' && url.pathname === '/repos/ada/shop/branches') {
      return json(res, 200, [{ name: 'develop', protected: false }, { name: 'main', protected: false }]);
    }
    if (req.method === 'POST' || req.method === 'PATCH') {
      return readBody(req).then((raw) => {
        let body = null;
        try { body = JSON.parse(raw.toString() || 'null'); } catch { body = null; }
        calls.push({ method: req.method, path: url.pathname, body });
        nextId += 1;
        const comment = url.pathname.match(/\/issues\/comments\/(\d+)$/);
        return json(res, req.method === 'PATCH' ? 200 : 201, { id: comment ? Number(comment[1]) : nextId });
      });
    }
    return json(res, 404, { message: 'Not Found' });
  })
  .listen(port, '127.0.0.1');

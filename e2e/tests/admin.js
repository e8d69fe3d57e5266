// The shared instance admin for the files after shell.spec.js: signs in once per run and
// keeps the session's cookies in e2e/artifacts, so later files reuse it (as a person keeps a
// session) instead of spending the per-account sign-in limit. Sets the instance up when a
// file runs alone.
const { expect } = require('@playwright/test');
const fs = require('node:fs');
const path = require('node:path');

const ADMIN = { name: 'Ada Lovelace', email: 'ada@example.com', password: 'analytical engine 1843' };
const saved = path.join(__dirname, '..', 'artifacts', 'admin-cookies.json');

async function signIn(page) {
  const context = page.context();
  if (fs.existsSync(saved)) {
    await context.addCookies(JSON.parse(fs.readFileSync(saved, 'utf8')));
    if ((await page.request.get('/api/v1/me')).status() === 200) return ensureWorkspace(page);
    await context.clearCookies();
  }
  // Past the per-account limit, wait as told.
  let res;
  for (let attempt = 0; attempt < 4; attempt += 1) {
    res = await page.request.post('/api/v1/auth/login', { data: { email: ADMIN.email, password: ADMIN.password } });
    if (res.status() !== 429) break;
    await new Promise((done) => setTimeout(done, 1000 * Number(res.headers()['retry-after'] || 5)));
  }
  if (res.status() !== 200) {
    res = await page.request.post('/api/v1/auth/signup', {
      data: { ...ADMIN, setup_token: process.env.RAILYARD_SETUP_TOKEN },
    });
    expect(res.status()).toBe(201);
  }
  fs.mkdirSync(path.dirname(saved), { recursive: true });
  fs.writeFileSync(saved, JSON.stringify(await context.cookies()));
  return ensureWorkspace(page);
}

async function ensureWorkspace(page) {
  const list = await (await page.request.get('/api/v1/workspaces')).json();
  if (list.workspaces.length === 0) {
    const csrf = (await page.context().cookies()).find((c) => c.name === 'railyard_csrf').value;
    const made = await page.request.post('/api/v1/workspaces', {
      data: { name: 'Analytical' },
      headers: { 'x-csrf-token': csrf },
    });
    expect(made.status()).toBe(201);
  }
}

module.exports = { ADMIN, signIn };

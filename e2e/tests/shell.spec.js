// The dashboard: first-run setup link, sign-in and sign-out, the shell with live health,
// routing and the not-found page, the API docs.
const { test, expect } = require('@playwright/test');
const { ADMIN, signIn } = require('./admin');
const fs = require('node:fs');
const path = require('node:path');

const artifacts = path.join(__dirname, '..', 'artifacts');
fs.mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: path.join(artifacts, name), fullPage: true });


/** Fails the test on any page error, console error, or request that leaves the server. */
function watch(page, baseURL) {
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // Refused input (4xx) is part of the flows under test; the browser logs it as an error.
    const expected4xx = /Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text());
    if (msg.type() === 'error' && !expected4xx) problems.push(`console error: ${msg.text()}`);
  });
  page.on('request', (req) => {
    if (!req.url().startsWith(baseURL)) problems.push(`external request: ${req.url()}`);
  });
  return problems;
}


test.describe.configure({ mode: 'serial' });

test('the setup link creates the first admin and signs them in', async ({ page, baseURL }) => {
  const problems = watch(page, baseURL);
  // Signed out, the dashboard sends visitors to sign in.
  await page.goto('/');
  await expect(page).toHaveURL(`${baseURL}/login`);

  await page.goto(`/setup?token=${process.env.RAILYARD_SETUP_TOKEN}`);
  await expect(page.getByRole('heading', { name: 'Set up Railyard' })).toBeVisible();
  await page.getByLabel('Your name').fill(ADMIN.name);
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password').fill('password123');
  await page.getByRole('button', { name: 'Create admin account' }).click();
  await expect(page.getByTestId('form-error')).toContainText(/commonly used/i);
  await shot(page, 'setup-refused-password.png');

  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Create admin account' }).click();
  await expect(page).toHaveURL(`${baseURL}/`);
  await expect(page.getByTestId('user-menu')).toContainText(ADMIN.name);
  await shot(page, 'setup-done.png');

  // The link works once.
  const again = await page.request.post('/api/v1/auth/signup', {
    data: { ...ADMIN, email: 'mallory@example.com', setup_token: process.env.RAILYARD_SETUP_TOKEN },
  });
  expect(again.status()).toBe(403);
  expect(problems).toEqual([]);
});

test('sign out, then sign in again', async ({ page, baseURL }) => {
  await signIn(page);
  await page.goto('/');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(`${baseURL}/login`);
  expect((await page.request.get('/api/v1/me')).status()).toBe(401);

  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password').fill('wrong password here');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('form-error')).toHaveText(/wrong email or password/i);
  await shot(page, 'sign-in-refused.png');

  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(`${baseURL}/`);
  await expect(page.getByTestId('user-menu')).toContainText(ADMIN.name);
});

test('continue with GitHub links the account by its verified email once its password is given', async ({ page, baseURL }) => {
  await page.goto('/login');
  await expect(page.getByRole('link', { name: 'Continue with GitHub' })).toBeVisible();
  await shot(page, 'sign-in.png');
  // The account never proved its address: GitHub links only with the account's password.
  await page.getByRole('link', { name: 'Continue with GitHub' }).click();
  await expect(page).toHaveURL(`${baseURL}/login?error=github_link_password`);
  await expect(page.getByTestId('form-error')).toContainText('Sign in with its password to connect GitHub');
  await expect(page.getByRole('button', { name: 'Create a separate account with GitHub' })).toBeVisible();
  await shot(page, 'sign-in-github-link.png');
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expect(page).toHaveURL(`${baseURL}/`);
  await expect(page.getByTestId('user-menu')).toContainText(ADMIN.name);
  // Linked now, and the address proven: the account page says so.
  await page.goto('/account');
  await expect(page.getByText('verified', { exact: true })).toBeVisible();
  await shot(page, 'account-email-verified.png');
  // Signed out, GitHub alone signs in.
  await page.goto('/');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(`${baseURL}/login`);
  await page.getByRole('link', { name: 'Continue with GitHub' }).click();
  await expect(page).toHaveURL(`${baseURL}/`);
  await expect(page.getByTestId('user-menu')).toContainText(ADMIN.name);
});

test('a workspace owner invites a teammate who joins from a second browser', async ({ page, browser, baseURL }) => {
  await signIn(page);
  page.on('dialog', (dialog) => dialog.accept());
  await page.goto('/');
  await page.getByTestId('workspace-switcher').selectOption('new');
  await expect(page).toHaveURL(`${baseURL}/workspaces/new`);
  await page.getByLabel('Name').fill('Acme');
  await page.getByRole('button', { name: 'Create workspace' }).click();
  await expect(page.getByRole('heading', { name: 'Members' })).toBeVisible();
  await expect(page.getByTestId('members')).toContainText(ADMIN.email);
  await expect(page.getByTestId('members')).toContainText('you');

  await page.getByLabel('Email to invite').fill('grace@example.com');
  await page.getByLabel('Role for the invitation').selectOption('member');
  await page.getByRole('button', { name: 'Send invitation' }).click();
  const link = (await page.getByTestId('invite-link').locator('pre').textContent()).trim();
  expect(link).toContain('/invite?token=');
  await expect(page.getByTestId('invitations')).toContainText('grace@example.com');
  await shot(page, 'members-invited.png');

  // The invitee, in a browser of their own, has no account yet on this invite-only instance.
  const other = await browser.newContext();
  const invitee = await other.newPage();
  await invitee.goto(link);
  await expect(invitee.getByTestId('invite-summary')).toContainText(`${ADMIN.name} invited grace@example.com to Acme as member`);
  await shot(invitee, 'invite-accept.png');
  await invitee.getByLabel('Your name').fill('Grace Hopper');
  await invitee.getByLabel('Password').fill('compiler cobol 1959');
  await invitee.getByRole('button', { name: 'Create account and join' }).click();
  await expect(invitee.getByRole('heading', { name: 'Members' })).toBeVisible();
  await expect(invitee.getByTestId('workspace-switcher')).toHaveValue(/[0-9a-f-]{36}/);
  await expect(invitee.getByTestId('members')).toContainText(ADMIN.email);
  // A member sees the members but cannot invite or change roles.
  await expect(invitee.getByLabel('Email to invite')).toHaveCount(0);
  await shot(invitee, 'members-as-invitee.png');
  await other.close();

  // The owner sees the new member, and the invitation is no longer pending.
  await page.reload();
  const row = page.getByTestId('member-row').filter({ hasText: 'grace@example.com' });
  await expect(row).toContainText('Grace Hopper');
  await expect(row.getByRole('combobox')).toHaveValue('member');
  await expect(page.getByText('No pending invitations.')).toBeVisible();

  // The owner makes her an admin; the audit log shows the trail.
  // Reload once the change is stored: a reload while the PATCH is in flight cancels it.
  const saved = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().includes('/members/'));
  await row.getByRole('combobox').selectOption('admin');
  expect((await saved).status()).toBe(200);
  await page.reload();
  await expect(page.getByTestId('member-row').filter({ hasText: 'grace@example.com' }).getByRole('combobox')).toHaveValue('admin');
  await shot(page, 'members.png');
  await page.getByRole('link', { name: 'Audit log' }).click();
  const audit = page.getByTestId('audit');
  await expect(audit).toContainText('member.update_role');
  await expect(audit).toContainText('invitation.accept');
  await expect(audit).toContainText('workspace.create');
  await shot(page, 'audit.png');
});

test('an admin renames the workspace from its settings', async ({ page }) => {
  await signIn(page);
  await page.goto('/');
  await page.getByRole('link', { name: 'Members' }).click();
  const settings = page.getByTestId('workspace-settings');
  await settings.getByLabel('Workspace name').fill('Acme Corp');
  await settings.getByRole('button', { name: 'Rename' }).click();
  await expect(settings.getByText('Saved.')).toBeVisible();
  await expect(page.getByTestId('workspace-switcher').locator('option:checked')).toHaveText('Acme Corp');
  await expect(settings.getByRole('button', { name: 'Delete workspace' })).toBeVisible();
});

test('the account page lists devices and creates an API token the API accepts', async ({ page, baseURL, playwright }) => {
  await signIn(page);
  await page.goto('/account');
  await expect(page.getByTestId('sessions')).toContainText('this device');
  await page.getByLabel('Token name').fill('ci');
  await page.getByRole('button', { name: 'Create token' }).click();
  const token = (await page.getByTestId('new-token').locator('pre').textContent()).trim();
  expect(token).toMatch(/^ry_/);
  await expect(page.getByTestId('tokens')).toContainText('ci');
  await shot(page, 'account.png');

  const api = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { Authorization: `Bearer ${token}` } });
  const me = await api.get('/api/v1/me');
  expect(me.status()).toBe(200);
  expect((await me.json()).user.email).toBe(ADMIN.email);
  await api.dispose();
});

test('the dashboard renders the live health status', async ({ page, baseURL }) => {
  await signIn(page);
  const problems = watch(page, baseURL);
  const health = await (await page.request.get('/api/v1/health')).json();
  expect(health.status).toBe('ok');

  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  await expect(page.getByTestId('health-badge')).toHaveText('All systems operational');
  await expect(page.getByTestId('health-badge')).toHaveAttribute('title', `Railyard ${health.version}`);

  const control = page.getByTestId('status-control-plane');
  await expect(control).toContainText('Operational');
  await expect(control).toContainText(`version ${health.version}`);
  await expect(page.getByTestId('status-postgresql')).toContainText('Operational');
  const redisWord = health.redis === 'ok' ? 'Operational' : 'Not configured';
  await expect(page.getByTestId('status-redis')).toContainText(redisWord);

  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }))
    .toHaveAttribute('aria-current', 'page');
  await expect(page.locator('pre.code')).toHaveText(`railyard status --url ${baseURL}`);

  // Fonts come from the server itself.
  await page.evaluate(() => document.fonts.ready);
  expect(await page.evaluate(() => document.fonts.check('16px Inter'))).toBe(true);

  await shot(page, 'dashboard.png');
  expect(problems).toEqual([]);
});

test('a degraded or unreachable server shows on the page', async ({ page }) => {
  await signIn(page);
  await page.route('**/api/v1/health', (route) =>
    route.fulfill({
      status: 503,
      contentType: 'application/json',
      body: JSON.stringify({ status: 'unavailable', database: 'unavailable', redis: 'ok', version: '9.9.9' }),
    }),
  );
  await page.goto('/');
  await expect(page.getByTestId('health-badge')).toHaveText('Degraded');
  await expect(page.getByTestId('status-postgresql')).toContainText('Unavailable');
  await expect(page.getByTestId('status-control-plane')).toContainText('Unavailable');
  await shot(page, 'dashboard-degraded.png');

  await page.unroute('**/api/v1/health');
  await page.route('**/api/v1/health', (route) => route.abort('connectionrefused'));
  await page.reload();
  await expect(page.getByTestId('health-badge')).toHaveText('Server unreachable');
  await expect(page.getByTestId('health-error')).toContainText('The server does not answer');
  await shot(page, 'dashboard-unreachable.png');
});

test('unknown pages show the not-found page and lead back', async ({ page, baseURL }) => {
  await signIn(page);
  const problems = watch(page, baseURL);
  const response = await page.goto('/no/such/page');
  expect(response.status()).toBe(200); // the SPA shell; the router decides
  const notFound = page.getByTestId('not-found');
  await expect(notFound).toBeVisible();
  await expect(notFound).toContainText('This page does not exist');
  await expect(notFound).toContainText('/no/such/page');
  await shot(page, 'not-found.png');

  await notFound.getByRole('link', { name: 'Back to overview' }).click();
  await expect(page).toHaveURL(`${baseURL}/`);
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  expect(problems).toEqual([]);
});

test('API docs are served by the binary', async ({ page, baseURL }) => {
  const problems = watch(page, baseURL);
  await page.goto('/api/docs/');
  await expect(page.getByText('Railyard API').first()).toBeVisible();
  await expect(page.getByText('/api/v1/health').first()).toBeVisible();
  await shot(page, 'api-docs.png');
  expect(problems.filter((p) => !p.startsWith('console error'))).toEqual([]);
});

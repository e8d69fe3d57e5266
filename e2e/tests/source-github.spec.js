// GitHub as a person connects it: "New service" offers to connect GitHub (the repo scope is
// asked for only now), comes back with the dialog open, lists the account's repositories
// (searchable) and the chosen one's branches; adding the service makes its webhook. A push
// signed with that webhook's secret is accepted (an unsigned one is refused) and shows on
// the project's Integrations page, desktop and phone.
const { test, expect } = require('@playwright/test');
const { signIn } = require('./admin');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const artifacts = path.join(__dirname, '..', 'artifacts');
fs.mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: path.join(artifacts, name), fullPage: true });
const PHONE = { width: 390, height: 844 };
const NAME = `gh-${process.pid}`;
const port = Number(process.env.RAILYARD_E2E_PORT || 7391);
const github = `http://127.0.0.1:${Number(process.env.FAKE_GITHUB_PORT || port + 2)}`;

async function api(page, method, url, data) {
  const csrf = (await page.context().cookies()).find((c) => c.name === 'railyard_csrf')?.value;
  const res = await page.request.fetch(url, { method, data, headers: csrf ? { 'x-csrf-token': csrf } : {} });
  const body = await res.text();
  return { status: res.status(), body: body ? JSON.parse(body) : null };
}

function delivery(page, id, body, secret) {
  const headers = { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': id };
  if (secret) headers['x-hub-signature-256'] = 'sha256=' + crypto.createHmac('sha256', secret).update(body).digest('hex');
  return page.request.post('/api/v1/github/webhook', { headers, data: body });
}

test('connect GitHub, pick a repository in New service, and see its webhook deliveries', async ({ page }) => {
  test.setTimeout(180_000);
  await signIn(page);
  const workspaces = (await api(page, 'GET', '/api/v1/workspaces')).body.workspaces;
  const made = await api(page, 'POST', '/api/v1/projects', { workspace_id: workspaces[0].id, name: NAME });
  expect(made.status).toBe(201);
  const project = made.body.project;

  await page.goto(`/projects/${project.id}`);
  await page.getByRole('button', { name: 'New service' }).click();
  const dialog = page.getByTestId('new-service');
  await expect(dialog.getByTestId('connect-github')).toBeVisible();
  await shot(page, 'github-connect.png');
  await dialog.getByRole('link', { name: 'Connect GitHub' }).click();

  // Back from GitHub, the dialog is open again with the account's repositories.
  await expect(page.getByTestId('repo-list')).toBeVisible();
  await expect(page.getByText('Connected to GitHub as')).toContainText('ada');
  await expect(page.getByTestId('repo-list').getByRole('option')).toHaveCount(2);
  await page.getByTestId('repo-search').fill('shop');
  await expect(page.getByTestId('repo-list').getByRole('option')).toHaveCount(1);
  await page.getByRole('button', { name: /ada\/shop/ }).click();
  await expect(page.getByTestId('branch-select')).toHaveValue('main');
  await expect(page.getByTestId('branch-select').locator('option')).toHaveText(['develop', 'main']);
  await page.getByTestId('new-service').getByLabel('Service name').fill('shop');
  await shot(page, 'github-new-service.png');
  await page.getByTestId('new-service').getByRole('button', { name: 'Add service' }).click();
  await expect(page.getByText('Service shop added.')).toBeVisible();

  // Railyard made the webhook; a push signed with its secret is taken, an unsigned one is not.
  const recorded = await (await page.request.get(`${github}/_calls`)).json();
  const hook = recorded.calls.find((c) => c.method === 'POST' && c.path === '/repos/ada/shop/hooks');
  expect(hook.body.events).toEqual(['push', 'pull_request']);
  const body = JSON.stringify({
    ref: 'refs/heads/main', after: recorded.head, repository: { full_name: 'ada/shop' },
    head_commit: { id: recorded.head, message: 'First version' },
  });
  expect((await delivery(page, `unsigned-${NAME}`, body, null)).status()).toBe(401);
  const taken = await delivery(page, `push-${NAME}`, body, hook.body.config.secret);
  expect(taken.status()).toBe(200);

  await page.getByTestId('integrations-link').click();
  const rows = page.getByTestId('delivery-row');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('push');
  await expect(rows.first()).toContainText('processed');
  await expect(rows.first()).toContainText('ada/shop');
  await expect(page.getByTestId('preview-settings')).toBeVisible();
  await shot(page, 'integrations.png');
  await page.setViewportSize(PHONE);
  await expect(rows.first()).toContainText('processed');
  await shot(page, 'integrations-phone.png');

  // The account page says who GitHub is connected as.
  await page.setViewportSize({ width: 1360, height: 860 });
  await page.goto('/account');
  await expect(page.getByTestId('github-card')).toContainText('Connected as ada');
  await expect(page.getByTestId('github-card').getByRole('button', { name: 'Disconnect' })).toBeVisible();
  await shot(page, 'account-github.png');
});

// The dashboard on a phone and the controls that follow the role: every page fits a
// 390 × 844 screen with no sideways scroll (the Deploy button and the environment select in
// view); on a desktop a long failure reason wraps instead of pushing the row's buttons out
// of the card; a viewer sees Deploy, Roll back, Save and Add disabled, with why; a double
// click on Deploy sends one request.
const { test, expect } = require('@playwright/test');
const { signIn } = require('./admin');
const { gitRepo } = require('./repo');
const fs = require('node:fs');
const path = require('node:path');

const artifacts = path.join(__dirname, '..', 'artifacts');
fs.mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: path.join(artifacts, name), fullPage: true });
const PHONE = { width: 390, height: 844 };
// A name of this run's own: a retried worker sets up again beside the first.
const NAME = `pocket-${process.pid}`;

// The build fails, and says so at length: the reason is the whole failing step.
const LONG = 'a build step whose failure message is far longer than any table cell could hold on one line';
const FAILING = {
  'railyard.toml': `build = "echo '${LONG}' && exit 3"\nstart = "node server.js"\n`,
  'server.js': "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT, '127.0.0.1');\n",
};

/** A JSON API call as the page's signed-in user (with its CSRF token). */
async function api(page, method, url, data) {
  const csrf = (await page.context().cookies()).find((c) => c.name === 'railyard_csrf')?.value;
  const res = await page.request.fetch(url, { method, data, headers: csrf ? { 'x-csrf-token': csrf } : {} });
  const body = await res.text();
  return { status: res.status(), body: body ? JSON.parse(body) : null };
}

/** The page's width beyond the screen (0 when it fits). */
const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

/** `locator` lies within the screen's width. */
async function inView(page, locator) {
  const box = await locator.boundingBox();
  expect(box, 'the element is laid out').not.toBeNull();
  expect(box.x).toBeGreaterThanOrEqual(0);
  expect(box.x + box.width).toBeLessThanOrEqual(page.viewportSize().width);
}

let project;
let service;
let staging;
let workspace;

test.beforeAll(async ({ browser }) => {
  const page = await browser.newPage();
  await signIn(page);
  workspace = (await api(page, 'GET', '/api/v1/workspaces')).body.workspaces[0].id;
  const made = await api(page, 'POST', '/api/v1/projects', { workspace_id: workspace, name: NAME });
  expect(made.status).toBe(201);
  project = made.body.project;
  const env = await api(page, 'POST', `/api/v1/projects/${project.id}/environments`, { name: 'staging' });
  expect(env.status).toBe(201);
  staging = env.body.environment.id;
  const svc = await api(page, 'POST', `/api/v1/projects/${project.id}/services`, {
    name: 'shop-frontend',
    source: { git: { url: gitRepo(FAILING), branch: 'main' } },
  });
  expect(svc.status).toBe(201);
  service = svc.body.service;
  const deployed = await api(page, 'POST', `/api/v1/services/${service.id}/deployments`, { environment_id: staging });
  expect(deployed.status).toBe(201);
  await expect.poll(async () => (await api(page, 'GET', `/api/v1/deployments/${deployed.body.deployment.id}`)).body.deployment.state,
    { timeout: 60_000 }).toBe('failed');
  await page.close();
});

test('a long failure reason wraps and the row keeps its buttons in the card', async ({ page }) => {
  await signIn(page);
  await page.goto(`/services/${service.id}?environment=${staging}`);
  const row = page.getByTestId('deployment-row').first();
  await expect(row.getByTestId('deployment-state')).toHaveText('failed');
  await expect(row).toContainText('exited with');
  const card = page.getByTestId('deployments');
  const fits = await card.evaluate((el) => el.scrollWidth <= el.clientWidth);
  expect(fits, 'the deployments table fits its card').toBe(true);
  const [cardBox, buttonBox] = [await card.boundingBox(), await row.getByRole('button', { name: 'Redeploy' }).boundingBox()];
  expect(buttonBox.x + buttonBox.width).toBeLessThanOrEqual(cardBox.x + cardBox.width);
  // The breadcrumbs name the project, environment and service (never an id).
  await expect(page.getByTestId('crumbs')).toHaveText(new RegExp(`${NAME}\\s*/\\s*staging\\s*/\\s*shop-frontend`));
  await expect(page.getByTestId('crumbs')).not.toContainText(service.id);
  await shot(page, 'desktop-failed-reason.png');
});

test('every page fits a 390 × 844 phone with no sideways scroll', async ({ page, browser }) => {
  test.setTimeout(120_000);
  await page.setViewportSize(PHONE);
  await signIn(page);
  const pages = [
    ['overview', '/', page.getByRole('heading', { level: 1 })],
    ['projects', '/projects', page.getByTestId('projects')],
    ['canvas', `/projects/${project.id}?environment=${staging}`, page.getByTestId('service-shop-frontend')],
    ['service', `/services/${service.id}?environment=${staging}`, page.getByTestId('deployment-row').first()],
    ['integrations', `/projects/${project.id}/integrations`, page.getByTestId('preview-settings')],
    ['members', `/workspaces/${workspace}/members`, page.getByTestId('members')],
    ['audit', `/workspaces/${workspace}/audit`, page.getByTestId('audit')],
    ['account', '/account', page.getByRole('heading', { level: 1 })],
    ['new-workspace', '/workspaces/new', page.getByRole('heading', { level: 1 })],
    ['not-found', '/nowhere', page.getByRole('heading', { level: 1 })],
  ];
  for (const [name, url, ready] of pages) {
    await page.goto(url);
    await expect(ready).toBeVisible();
    expect(await overflow(page), `${name} is wider than the phone`).toBeLessThanOrEqual(0);
    await shot(page, `phone-${name}.png`);
  }

  // The canvas: its environment select and New service in view.
  await page.goto(`/projects/${project.id}?environment=${staging}`);
  await inView(page, page.getByTestId('environment-select'));
  await inView(page, page.getByRole('button', { name: 'New service' }));
  // The service page: Deploy in view, and each tab fits.
  await page.goto(`/services/${service.id}?environment=${staging}`);
  await expect(page.getByTestId('deployment-row').first()).toBeVisible();
  await inView(page, page.getByTestId('deploy'));
  await inView(page, page.getByTestId('deployment-row').first().getByRole('button', { name: 'Redeploy' }));
  for (const tab of ['Logs', 'Variables', 'Settings']) {
    await page.getByRole('tab', { name: tab }).click();
    await expect(page.getByRole('tab', { name: tab })).toHaveAttribute('aria-selected', 'true');
    await page.waitForTimeout(300);
    expect(await overflow(page), `the ${tab} tab is wider than the phone`).toBeLessThanOrEqual(0);
    await shot(page, `phone-service-${tab.toLowerCase()}.png`);
  }

  // The signed-out pages, in a browser of their own.
  const other = await browser.newContext({ viewport: PHONE });
  const visitor = await other.newPage();
  for (const [name, url] of [['login', '/login'], ['signup', '/signup'], ['invite', '/invite?token=nope']]) {
    await visitor.goto(url);
    await expect(visitor.getByRole('heading', { level: 1 })).toBeVisible();
    expect(await overflow(visitor), `${name} is wider than the phone`).toBeLessThanOrEqual(0);
    await shot(visitor, `phone-${name}.png`);
  }
  await other.close();
});

test('a viewer sees the write controls disabled, and a double click on Deploy sends one request', async ({ page, browser }) => {
  test.setTimeout(120_000);
  await signIn(page);
  const email = `viewer-${Date.now()}@example.com`;
  const invited = await api(page, 'POST', `/api/v1/workspaces/${workspace}/invitations`, { email, role: 'viewer' });
  expect(invited.status).toBe(201);
  const token = new URL(invited.body.accept_url).searchParams.get('token');

  const other = await browser.newContext();
  const viewer = await other.newPage();
  await viewer.goto('/');
  const joined = await api(viewer, 'POST', '/api/v1/auth/signup', {
    email, name: 'Vera Viewer', password: 'only looking 1234', invitation_token: token,
  });
  expect(joined.status).toBe(201);
  await viewer.goto(`/services/${service.id}?environment=${staging}`);
  await expect(viewer.getByTestId('deployment-row').first()).toBeVisible();
  const deploy = viewer.getByTestId('deploy');
  await expect(deploy).toBeDisabled();
  await expect(deploy).toHaveAttribute('title', 'Viewers cannot deploy');
  await expect(viewer.getByTestId('deployment-row').first().getByRole('button', { name: 'Redeploy' })).toBeDisabled();
  await viewer.getByRole('tab', { name: 'Variables' }).click();
  await expect(viewer.getByTestId('variables-service').getByRole('button', { name: 'Add', exact: true })).toBeDisabled();
  await viewer.getByRole('tab', { name: 'Settings' }).click();
  await expect(viewer.getByRole('button', { name: 'Save settings' })).toBeDisabled();
  await shot(viewer, 'viewer-settings.png');
  // The API agrees: the disabled control would have been refused.
  const refused = await api(viewer, 'POST', `/api/v1/services/${service.id}/deployments`, { environment_id: staging });
  expect(refused.status).toBe(403);
  await other.close();

  // The owner double-clicks Deploy: one request, one new deployment.
  await page.goto(`/services/${service.id}?environment=${staging}`);
  const rows = page.getByTestId('deployment-row');
  await expect(rows.first()).toBeVisible();
  const before = await rows.count();
  let posts = 0;
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith(`/services/${service.id}/deployments`)) posts += 1;
  });
  await page.getByTestId('deploy').dblclick();
  await expect(page.getByTestId('toasts')).toContainText('Deployment queued.');
  await expect(rows).toHaveCount(before + 1);
  await page.waitForTimeout(500);
  expect(posts).toBe(1);
  const list = await api(page, 'GET', `/api/v1/services/${service.id}/deployments?environment=${staging}`);
  expect(list.body.deployments.length).toBe(before + 1);
});

// The dashboard shell: layout, live health status, routing, not-found page.
const { test, expect } = require('@playwright/test');
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
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  page.on('request', (req) => {
    if (!req.url().startsWith(baseURL)) problems.push(`external request: ${req.url()}`);
  });
  return problems;
}

test('the dashboard renders the live health status', async ({ page, baseURL }) => {
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

  // The sidebar link to the current page is marked, the layout is the shell's.
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

// Environments as a workflow, as a person does it: a new environment cloned from production
// (its variables come along), a deploy of a new commit there, the environment matrix showing
// production one commit behind, and "Promote → production" from the matrix: the plan, then
// production serves the new commit with its own variables, "promoted from staging" in its
// history. The matrix and the service page are looked at on a desktop and on a phone.
const { test, expect } = require('@playwright/test');
const { signIn } = require('./admin');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const artifacts = path.join(__dirname, '..', 'artifacts');
fs.mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: path.join(artifacts, name), fullPage: true });
const PHONE = { width: 390, height: 844 };
const NAME = `pipe-${process.pid}`;

const SERVER = `const v = require('fs').readFileSync('version.txt', 'utf8').trim();
require('http').createServer((q, s) => s.end(v + ' ' + (process.env.GREETING || '-'))).listen(process.env.PORT, '127.0.0.1');
`;

/** A git repository (branch main) with a first commit; `commit(files, message)` adds the next. */
function gitRepo(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'railyard-e2e-envs-'));
  const git = (...args) => execFileSync('git', args, { cwd: dir, stdio: 'pipe' }).toString().trim();
  const commit = (more, message) => {
    for (const [name, text] of Object.entries(more)) fs.writeFileSync(path.join(dir, name), text);
    git('add', '.');
    git('-c', 'user.name=Grace', '-c', 'user.email=grace@example.com', 'commit', '-q', '-m', message);
    return git('rev-parse', 'HEAD');
  };
  git('init', '-q', '-b', 'main');
  const first = commit(files, 'First version');
  return { url: `file://${dir}`, first, commit };
}

/** A JSON API call as the page's signed-in user (with its CSRF token). */
async function api(page, method, url, data) {
  const csrf = (await page.context().cookies()).find((c) => c.name === 'railyard_csrf')?.value;
  const res = await page.request.fetch(url, { method, data, headers: csrf ? { 'x-csrf-token': csrf } : {} });
  const body = await res.text();
  return { status: res.status(), body: body ? JSON.parse(body) : null };
}

async function appSays(context, url) {
  const app = await context.newPage();
  const res = await app.goto(url);
  const text = await app.locator('body').innerText();
  await app.close();
  return { status: res.status(), text };
}

test('clone production into staging, deploy there, and promote from the matrix', async ({ page, context }) => {
  test.setTimeout(240_000);
  await signIn(page);
  const repo = gitRepo({ 'railyard.toml': 'start = "node server.js"\n', 'server.js': SERVER, 'version.txt': 'v1' });

  // A project whose service deploys to production at once, with a variable of production's.
  const workspaces = (await api(page, 'GET', '/api/v1/workspaces')).body.workspaces;
  const made = await api(page, 'POST', '/api/v1/projects', { workspace_id: workspaces[0].id, name: NAME });
  expect(made.status).toBe(201);
  const project = made.body.project;
  const production = project.environments.find((e) => e.kind === 'production').id;
  const svc = await api(page, 'POST', `/api/v1/projects/${project.id}/services`, {
    name: 'web', source: { git: { url: repo.url, branch: 'main' } },
  });
  expect(svc.status).toBe(201);
  const web = svc.body.service.id;
  expect(svc.body.deployment_id).toBeTruthy();
  const variable = await api(page, 'POST', `/api/v1/services/${web}/variables?environment=${production}`,
    { name: 'GREETING', value: 'hello', sealed: true });
  expect(variable.status).toBe(201);
  const redeploy = await api(page, 'POST', `/api/v1/services/${web}/deployments`, { environment_id: production });
  expect(redeploy.status).toBe(201);
  await expect.poll(async () => (await api(page, 'GET', `/api/v1/deployments/${redeploy.body.deployment.id}`)).body.deployment.state,
    { timeout: 90_000 }).toBe('active');

  // "New environment": staging, a copy of production.
  await page.goto(`/projects/${project.id}`);
  await expect(page.getByTestId('service-web')).toBeVisible();
  await page.getByTestId('new-environment-button').click();
  const dialog = page.getByTestId('new-environment');
  await dialog.getByTestId('environment-name').fill('staging');
  await expect(dialog.getByTestId('environment-clone')).toHaveValue(production);
  await shot(page, 'envs-new-environment.png');
  await dialog.getByTestId('create-environment').click();
  await expect(page.getByTestId('toasts')).toContainText('Environment staging created with a copy');
  await expect(page).toHaveURL(/\?environment=[0-9a-f-]{36}$/);
  const staging = new URL(page.url()).searchParams.get('environment');
  await expect(page.getByTestId('environment-select')).toHaveValue(staging);

  // The service page in staging: its variable came along sealed; a new commit deployed there.
  await page.getByTestId('service-web').click();
  await expect(page).toHaveURL(new RegExp(`/services/${web}\\?environment=${staging}$`));
  await page.getByRole('tab', { name: 'Variables' }).click();
  await expect(page.getByTestId('variable-GREETING')).toContainText('sealed');
  const second = repo.commit({ 'version.txt': 'v2' }, 'Second version');
  await page.getByRole('tab', { name: 'Deployments' }).click();
  await page.getByTestId('deploy').click();
  await expect(page.getByTestId('deployment-state').first()).toHaveText('active', { timeout: 90_000 });
  const stagingUrl = await page.getByTestId('public-url').getAttribute('href');
  expect(stagingUrl).toMatch(new RegExp(`^http://web-staging-${NAME}\\.localhost:\\d+$`));
  expect((await appSays(context, stagingUrl)).text).toBe('v2 hello');
  await expect(page.getByTestId('service-controls')).toBeVisible();
  await shot(page, 'envs-service-staging.png');

  // The matrix: production one commit behind staging; promote from staging's cell.
  await page.goto(`/projects/${project.id}`);
  await page.getByTestId('matrix-link').click();
  await expect(page).toHaveURL(new RegExp(`/projects/${project.id}/matrix$`));
  const matrix = page.getByTestId('matrix');
  await expect(matrix.locator('thead')).toContainText('staging');
  await expect(matrix.locator('thead')).toContainText('production');
  const cells = matrix.getByTestId('matrix-cell');
  await expect(cells.nth(0)).toContainText(second.slice(0, 7));
  await expect(cells.nth(0)).toContainText('Second version');
  await expect(cells.nth(1)).toContainText(repo.first.slice(0, 7));
  await expect(cells.nth(1).getByTestId('drift')).toContainText('↓1');
  await shot(page, 'envs-matrix.png');
  await cells.nth(0).getByTestId('promote').click();
  const plan = page.getByTestId('promote-dialog');
  await expect(plan.getByTestId('plan')).toContainText('Commits it brings (1)');
  await expect(plan.getByTestId('plan')).toContainText('Second version');
  await shot(page, 'envs-promote-plan.png');
  await plan.getByTestId('apply-promotion').click();
  await expect(page.getByTestId('toasts')).toContainText('Promotion started');
  // Live: production's cell follows to the promoted commit with no reload.
  await expect(cells.nth(1)).toContainText(second.slice(0, 7), { timeout: 60_000 });
  await expect(cells.nth(1)).toContainText('running');
  await expect(cells.nth(1).getByTestId('drift')).toHaveCount(0);
  const productionUrl = stagingUrl.replace('web-staging-', 'web-production-');
  await expect.poll(async () => (await appSays(context, productionUrl)).text, { timeout: 30_000 }).toBe('v2 hello');

  // Production's history says where the build came from.
  await cells.nth(1).locator('a').click();
  await expect(page).toHaveURL(new RegExp(`/services/${web}\\?environment=${production}$`));
  await expect(page.getByTestId('deployment-source').first()).toHaveText('promoted from staging');
  await shot(page, 'envs-service-production.png');
  await page.getByRole('tab', { name: 'Settings' }).click();
  await expect(page.getByTestId('danger-zone')).toContainText('Delete the project');
  await expect(page.getByTestId('danger-zone')).not.toContainText('Delete the environment');
  await shot(page, 'envs-settings.png');

  // On a phone: the matrix scrolls sideways inside its card, the page does not.
  await page.setViewportSize(PHONE);
  await page.goto(`/projects/${project.id}/matrix`);
  await expect(cells.nth(1)).toContainText(second.slice(0, 7));
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await shot(page, 'envs-matrix-phone.png');
  await page.goto(`/services/${web}?environment=${staging}`);
  await expect(page.getByTestId('service-controls')).toBeVisible();
  await shot(page, 'envs-service-phone.png');
});

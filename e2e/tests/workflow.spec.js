// The developer's day: sign in, create a project, add a service from a local git repository,
// deploy it and watch the build stream in, open the app through its router URL and see the
// request in the runtime log, deploy a second commit, roll back to the first from the
// deployment list, and see the canvas (open in another tab) follow along with no reload.
// Log lines with markup wrapped in colour codes render as coloured text, never as markup.
const { test, expect } = require('@playwright/test');
const { signIn } = require('./admin');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const artifacts = path.join(__dirname, '..', 'artifacts');
fs.mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: path.join(artifacts, name), fullPage: true });

const XSS = '<img src=x onerror=alert(1)>';

const server = (version) => `for (let i = 1; i <= 3000; i += 1) console.log('boot line ' + i);
console.log('\\u001b[31m${XSS}\\u001b[0m');
require('http').createServer((q, s) => {
  console.log('request', q.method, q.url);
  s.end('version ${version}');
}).listen(process.env.PORT, '127.0.0.1');
`;

/** A git repository (branch main) with a first commit; `commit(files)` adds the next. */
function gitRepo(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'railyard-e2e-flow-'));
  const git = (...args) => execFileSync('git', args, { cwd: dir, stdio: 'pipe' }).toString().trim();
  const commit = (more, message) => {
    for (const [name, text] of Object.entries(more)) fs.writeFileSync(path.join(dir, name), text);
    git('add', '.');
    git('-c', 'user.name=e2e', '-c', 'user.email=e2e@example.com', 'commit', '-q', '-m', message);
    return git('rev-parse', 'HEAD');
  };
  git('init', '-q', '-b', 'main');
  const first = commit(files, 'first');
  return { url: `file://${dir}`, first, commit };
}


/** Page errors and console errors (but the 4xx a refused request logs). */
function watch(page) {
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    const expected4xx = /Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text());
    if (msg.type() === 'error' && !expected4xx) problems.push(`console error: ${msg.text()}`);
  });
  return problems;
}

async function appSays(context, url) {
  const app = await context.newPage();
  const res = await app.goto(url);
  const text = await app.locator('body').innerText();
  await app.close();
  expect(res.status()).toBe(200);
  return text;
}

test('deploy, watch it live, roll back from the list, and the canvas follows', async ({ page, context }) => {
  test.setTimeout(240_000);
  const problems = watch(page);
  await signIn(page);
  page.on('dialog', (dialog) => dialog.accept());
  const repo = gitRepo({
    'railyard.toml': String.raw`build = 'printf "\033[1;32mbuilt\033[0m \033[31m${XSS}\033[0m\n"'` + '\nstart = "node server.js"\n',
    'server.js': server(1),
  });

  // A project, and its empty canvas.
  await page.goto('/projects');
  await page.getByLabel('Project name').fill('flow');
  await page.getByRole('button', { name: 'Create project' }).click();
  await expect(page).toHaveURL(/\/projects\/[0-9a-f-]{36}$/);
  const canvasUrl = page.url();
  await expect(page.getByTestId('canvas')).toContainText('No services yet');
  await expect(page.getByTestId('canvas-connection')).toHaveText('live');

  // "New service": from the git repository. The card appears on the live canvas, and it
  // deploys to production at once (as on Railway).
  await page.getByRole('button', { name: 'New service' }).click();
  const dialog = page.getByTestId('new-service');
  await dialog.getByRole('tab', { name: 'Git URL' }).click();
  await dialog.getByLabel('Service name').fill('web');
  await dialog.getByLabel('Git repository').fill(repo.url);
  await dialog.getByRole('button', { name: 'Add service' }).click();
  await expect(dialog).toHaveCount(0);
  const node = page.getByTestId('service-web');
  await expect(page.getByTestId('toasts')).toContainText('Service web added.');
  await expect(node).not.toContainText('Not deployed yet');

  // The service page: the build log streams in, colours as styled text.
  await node.click();
  await expect(page.getByRole('heading', { name: 'web', level: 1 })).toBeVisible();
  const build = page.getByTestId('build-log');
  await expect(build.getByTestId('log-connection')).toHaveText('live');
  await expect(build).toContainText('Checked out commit');
  await expect(build).toContainText(XSS);
  await expect(build.locator('img')).toHaveCount(0);
  await expect(build.locator('.ansi-fg-1', { hasText: XSS })).toHaveCount(1);
  await expect(build.locator('.ansi-bold.ansi-fg-2', { hasText: 'built' })).toHaveCount(1);
  expect(await build.innerText()).not.toContain('\u001b');
  await expect(build).toContainText('Live: traffic goes to this release.', { timeout: 90_000 });
  await expect(page.getByTestId('deployment-state').first()).toHaveText('active', { timeout: 30_000 });
  await expect(page.getByTestId('service-state')).toHaveText('running');
  // The app's resident memory (a Node server: tens of MB), its uptime and restarts.
  await expect(page.getByTestId('service-usage')).toHaveText(/^[1-9]\d* MB · up \d+[sm] · 0 restarts$/);
  // The plan it was built by, above its log.
  const plan = page.getByTestId('plan');
  await expect(plan).toContainText('railyard.toml');
  await expect(plan).toContainText('node server.js');
  await shot(page, 'flow-deployment.png');

  // Through the router; the request shows up in the runtime log, live.
  const url = await page.getByTestId('public-url').getAttribute('href');
  expect(url).toMatch(/^http:\/\/web-production-flow\.localhost:\d+$/);
  await page.getByRole('tab', { name: 'Logs' }).click();
  const runtime = page.getByTestId('runtime-log');
  await expect(runtime.getByTestId('log-connection')).toHaveText('live');
  expect(await appSays(context, `${url}/hello-from-the-browser`)).toBe('version 1');
  await expect(runtime).toContainText('request GET /hello-from-the-browser');
  await expect(runtime.locator('.log-event', { hasText: 'is live' })).toHaveCount(1);
  await expect(runtime.locator('img')).toHaveCount(0);
  await expect(runtime.locator('.ansi-fg-1', { hasText: XSS })).toHaveCount(1);
  // 3,000 boot lines: only the rows in view exist in the page; follow mode shows the end, and
  // scrolling up leaves it (with a way back).
  await expect(runtime.getByTestId('log-count')).toContainText(/^30\d\d lines$/);
  expect(await runtime.locator('.log-line').count()).toBeLessThan(120);
  await expect(runtime.locator('.log-line', { hasText: 'boot line 3000' })).toBeVisible();
  await runtime.getByTestId('log-viewport').evaluate((el) => { el.scrollTop = 0; });
  await expect(runtime.locator('.log-line', { hasText: /boot line 1$/ })).toBeVisible();
  expect(await runtime.locator('.log-line').count()).toBeLessThan(120);
  await runtime.getByRole('button', { name: 'Jump to bottom ↓' }).click();
  await expect(runtime.locator('.log-line', { hasText: 'hello-from-the-browser' })).toBeVisible();
  // Search and the stream filter narrow what is shown.
  await runtime.getByLabel('Search the log').fill('hello-from');
  await expect(runtime.locator('.log-line')).toHaveCount(1);
  await expect(runtime.getByTestId('log-count')).toContainText('1 of');
  await runtime.getByLabel('Search the log').fill('');
  await runtime.getByLabel('Stream').selectOption('event');
  await expect(runtime.locator('.log-line').first()).toContainText('is live');
  await expect(runtime.locator('.log-stdout')).toHaveCount(0);
  await runtime.getByLabel('Stream').selectOption('');
  await shot(page, 'flow-runtime-log.png');

  // Settings: a health check path, which the next deployment waits for, and a memory limit
  // it starts with.
  await page.getByRole('tab', { name: 'Settings' }).click();
  const settings = page.getByTestId('settings');
  // What the service keeps on disk, measured after its build.
  await expect(page.getByTestId('disk-usage')).toContainText(/On disk: [\d.]+ (B|KB|MB|GB) \(releases, build cache, logs\) · the workspace uses [\d.]+ (B|KB|MB|GB) of [\d.]+ GB\./);
  await settings.getByLabel('Health check path').fill('/healthz');
  await settings.getByLabel('Memory limit (MB)').fill('256');
  await settings.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.getByTestId('toasts')).toContainText('Settings saved');
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, 'flow-settings.png');

  // A second commit, deployed.
  const second = repo.commit({ 'server.js': server(2) }, 'second');
  await page.getByRole('tab', { name: 'Deployments' }).click();
  await page.getByRole('button', { name: 'Deploy', exact: true }).click();
  await expect(page.getByTestId('build-log')).toContainText('Waiting for /healthz to answer 2xx.', { timeout: 60_000 });
  await expect(page.getByTestId('build-log')).toContainText('and a memory limit of 256 MB.');
  const rows = page.getByTestId('deployment-row');
  await expect(rows).toHaveCount(2);
  await expect(rows.first().getByTestId('deployment-state')).toHaveText('active', { timeout: 90_000 });
  await expect(rows.first()).toContainText(second.slice(0, 8));
  expect(await appSays(context, url)).toBe('version 2');

  // The canvas, in another tab, shows the second commit live.
  const canvas = await context.newPage();
  const canvasProblems = watch(canvas);
  await canvas.goto(canvasUrl);
  const liveNode = canvas.getByTestId('service-web');
  await expect(canvas.getByTestId('canvas-connection')).toHaveText('live');
  await expect(liveNode.getByTestId('node-active')).toContainText(second.slice(0, 8));
  await expect(liveNode.getByTestId('node-state')).toHaveText('running');

  // Roll back to the first from the list (confirmed); the canvas follows without a reload.
  const old = rows.filter({ hasText: repo.first.slice(0, 8) });
  await expect(old.getByTestId('deployment-state')).toHaveText('superseded');
  await old.getByRole('button', { name: 'Roll back to this' }).click();
  await expect(page.getByTestId('toasts')).toContainText('Rollback queued.');
  await expect(liveNode.getByTestId('node-active')).toContainText(repo.first.slice(0, 8), { timeout: 60_000 });
  await expect(liveNode.getByTestId('node-state')).toHaveText('running');
  await expect(rows.first().getByTestId('deployment-state')).toHaveText('active');
  await expect(rows.filter({ hasText: second.slice(0, 8) }).first().getByTestId('deployment-state')).toHaveText('rolled back');
  expect(await appSays(context, url)).toBe('version 1');
  await shot(canvas, 'flow-canvas.png');
  await shot(page, 'flow-rolled-back.png');
  await canvas.close();
  expect(problems).toEqual([]);
  expect(canvasProblems).toEqual([]);
});

// Variables in the dashboard: create a project and two services from local git
// repositories, add a plain variable to one, a sealed one and a reference to the first
// service's variable to the other, deploy, open the app through its router URL and see the
// resolved values; the sealed value is never on the page after it is saved.
const { test, expect } = require('@playwright/test');
const { signIn } = require('./admin');
const { gitRepo } = require('./repo');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const artifacts = path.join(__dirname, '..', 'artifacts');
fs.mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: path.join(artifacts, name), fullPage: true });

const SECRET = `sk_live_${crypto.randomBytes(12).toString('hex')}`;

const SERVER = `const crypto = require('crypto');
console.log('starting with the token', process.env.SECRET_TOKEN || '(none)');
require('http').createServer((q, s) => {
  console.log('request', q.url);
  s.setHeader('content-type', 'application/json');
  s.end(JSON.stringify({
    from_api: process.env.FROM_API || null,
    greeting: process.env.GREETING || null,
    token_sha256: crypto.createHash('sha256').update(process.env.SECRET_TOKEN || '').digest('hex'),
    service: process.env.RAILYARD_SERVICE_NAME,
  }));
}).listen(process.env.PORT, '127.0.0.1');
`;

/** Signs in the instance admin (setting the instance up when this file runs alone). */

async function addService(page, name, url) {
  await page.getByRole('button', { name: 'New service' }).click();
  const form = page.getByTestId('new-service');
  await form.getByRole('tab', { name: 'Git URL' }).click();
  await form.getByLabel('Service name').fill(name);
  await form.getByLabel('Git repository').fill(url);
  await form.getByRole('button', { name: 'Add service' }).click();
  await expect(page.getByTestId('services').getByRole('heading', { name })).toBeVisible();
}

async function addVariable(page, name, value, sealed = false) {
  const panel = page.getByTestId('variables-service');
  await panel.getByLabel('New variable name').fill(name);
  await panel.getByLabel('New variable value').fill(value);
  if (sealed) await panel.getByLabel('Sealed').check();
  await panel.getByRole('button', { name: 'Add', exact: true }).click();
  await expect(panel.getByTestId(`variable-${name}`)).toBeVisible();
}

/** Everything on the page a person could read or copy: text, attributes, input values. */
async function pageText(page) {
  const values = await page.locator('input, textarea').evaluateAll((els) => els.map((e) => e.value).join('\n'));
  return `${await page.content()}\n${values}`;
}

test('variables: a sealed one and a reference reach the app, and the sealed value never shows', async ({ page, context, baseURL }) => {
  test.setTimeout(120_000);
  await signIn(page);
  const apiRepo = gitRepo({ Procfile: 'web: node server.js\n', 'server.js': SERVER });
  // Its build prints markup wrapped in terminal colours: the log must show it as text.
  const webRepo = gitRepo({
    'railyard.toml': String.raw`build = 'printf "\033[31m<img src=x onerror=alert(1)>\033[0m\n"'` + '\nstart = "node server.js"\n',
    'server.js': SERVER,
  });
  page.on('dialog', (dialog) => { throw new Error(`a dialog opened: ${dialog.message()}`); });

  await page.goto('/projects');
  await page.getByLabel('Project name').fill('shop');
  await page.getByRole('button', { name: 'Create project' }).click();
  await expect(page).toHaveURL(/\/projects\/[0-9a-f-]{36}$/);
  const projectUrl = page.url();
  await addService(page, 'api', apiRepo);
  await addService(page, 'web', webRepo);
  await shot(page, 'project-services.png');

  // The api service gets a plain variable.
  await page.getByTestId('services').getByRole('heading', { name: 'api' }).click();
  await expect(page.getByRole('heading', { name: 'api', level: 1 })).toBeVisible();
  await page.getByRole('tab', { name: 'Variables' }).click();
  await addVariable(page, 'GREETING', 'hello from api');

  // The web service: a sealed secret and a reference to the api's variable.
  await page.goto(projectUrl);
  await page.getByTestId('services').getByRole('heading', { name: 'web' }).click();
  await expect(page.getByRole('heading', { name: 'web', level: 1 })).toBeVisible();
  await page.getByRole('tab', { name: 'Variables' }).click();
  await addVariable(page, 'SECRET_TOKEN', SECRET, true);
  const sealedRow = page.getByTestId('variable-SECRET_TOKEN');
  await expect(sealedRow).toContainText('sealed');
  expect(await pageText(page)).not.toContain(SECRET);
  await addVariable(page, 'FROM_API', '${{ api.GREETING }}');
  const reference = page.getByTestId('variable-FROM_API').getByTestId('resolved');
  await expect(reference).toContainText('hello from api');
  await expect(reference).toContainText('from api.GREETING');
  // A reference to nothing is refused, and says what is missing.
  await addVariableRefused(page, 'BROKEN', '${{ api.NOPE }}', 'api.NOPE');
  await shot(page, 'service-variables.png');

  // Deploy, and watch it go live.
  await page.getByRole('tab', { name: 'Deployments' }).click();
  await page.getByRole('button', { name: 'Deploy', exact: true }).click();
  // The build log streams in over the live socket.
  const log = page.getByTestId('build-log');
  await expect(page.getByTestId('log-connection')).toHaveText('live');
  await expect(log).toContainText('Plan: railyard.toml');
  await expect(log).toContainText('<img src=x onerror=alert(1)>');
  await expect(log.locator('img')).toHaveCount(0);
  // The output line is exactly the markup, as text: colour codes gone, nothing rendered.
  await expect(log.locator('.log-line', { hasText: /^[\d:.]+<img src=x onerror=alert\(1\)>$/ })).toHaveCount(1);
  expect(await log.innerText()).not.toContain('\u001b');
  await expect(log).toContainText('Healthy after', { timeout: 90_000 });
  await expect(page.getByTestId('deployment-state').first()).toHaveText('active', { timeout: 90_000 });
  await expect(page.getByTestId('service-state')).toHaveText('running', { timeout: 15_000 });
  await shot(page, 'service-deployed.png');

  // The app, through its router URL, reports the resolved values.
  const url = await page.getByTestId('public-url').getAttribute('href');
  expect(url).toMatch(/^http:\/\/web-production-shop\.localhost:\d+$/);
  const app = await context.newPage();
  await app.goto(url);
  const said = JSON.parse(await app.locator('body').innerText());
  expect(said.from_api).toBe('hello from api');
  expect(said.greeting).toBeNull();
  expect(said.token_sha256).toBe(crypto.createHash('sha256').update(SECRET).digest('hex'));
  expect(said.service).toBe('web');
  await shot(app, 'app-resolved-values.png');
  await app.close();

  // The runtime log shows the request live, and the printed secret only as a mask.
  await page.getByRole('tab', { name: 'Logs' }).click();
  const runtime = page.getByTestId('runtime-log');
  await expect(runtime).toContainText('request /');
  await expect(runtime).toContainText('starting with the token *****');
  await shot(page, 'service-runtime-log.png');

  // Afterwards, nowhere on the page: not in the table, not in the raw editor.
  await page.getByRole('tab', { name: 'Variables' }).click();
  await expect(sealedRow).toContainText('sealed');
  await page.getByRole('button', { name: 'Raw editor' }).first().click();
  await expect(page.getByLabel('Raw .env')).toHaveValue(/FROM_API=/);
  await expect(page.getByLabel('Raw .env')).toHaveValue(/# SECRET_TOKEN is sealed/);
  await page.reload();
  await page.getByRole('tab', { name: 'Variables' }).click();
  await expect(sealedRow).toBeVisible();
  expect(await pageText(page)).not.toContain(SECRET);
  expect(baseURL).toBeTruthy();
});

async function addVariableRefused(page, name, value, says) {
  const panel = page.getByTestId('variables-service');
  await panel.getByLabel('New variable name').fill(name);
  await panel.getByLabel('New variable value').fill(value);
  await panel.getByRole('button', { name: 'Add', exact: true }).click();
  await expect(panel.getByTestId('form-error')).toContainText(says);
  await expect(panel.getByTestId(`variable-${name}`)).toHaveCount(0);
  await panel.getByLabel('New variable name').fill('');
  await panel.getByLabel('New variable value').fill('');
}

test('variables: a service page in another environment edits that environment\'s variables', async ({ page }) => {
  test.setTimeout(60_000);
  await signIn(page);
  const repo = gitRepo({ Procfile: 'web: node server.js\n', 'server.js': SERVER });
  await page.goto('/projects');
  await page.getByLabel('Project name').fill('envs');
  await page.getByRole('button', { name: 'Create project' }).click();
  await expect(page).toHaveURL(/\/projects\/[0-9a-f-]{36}$/);
  const project = page.url().split('/').pop();
  await addService(page, 'api', repo);
  const csrf = (await page.context().cookies()).find((c) => c.name === 'railyard_csrf').value;
  const made = await page.request.post(`/api/v1/projects/${project}/environments`, {
    data: { name: 'staging' },
    headers: { 'x-csrf-token': csrf },
  });
  expect(made.status()).toBe(201);
  const staging = (await made.json()).environment.id;
  const services = await (await page.request.get(`/api/v1/projects/${project}/services`)).json();
  const service = services.services.find((s) => s.name === 'api').id;

  await page.goto(`/services/${service}?environment=${staging}`);
  await page.getByRole('tab', { name: 'Variables' }).click();
  await addVariable(page, 'ONLY_STAGING', 'yes');
  await shot(page, 'staging-variables.png');
  const names = async (query) => (await (await page.request.get(`/api/v1/services/${service}/variables${query}`)).json())
    .variables.map((v) => v.name);
  expect(await names(`?environment=${staging}`)).toContain('ONLY_STAGING');
  expect(await names('')).not.toContain('ONLY_STAGING');
  // Reloaded, the staging page still shows it (it reads staging, not production).
  await page.reload();
  await page.getByRole('tab', { name: 'Variables' }).click();
  await expect(page.getByTestId('variables-service').getByTestId('variable-ONLY_STAGING')).toBeVisible();
});

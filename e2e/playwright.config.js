// Browser tests against the real server (started below) in Debian's Chromium; Playwright
// never downloads a browser. scripts/test.sh sets the environment: the server binary, a
// fresh database, Redis, the built dashboard and a free port.
const { defineConfig } = require('@playwright/test');
const crypto = require('node:crypto');
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');

// The one-time setup token of the fresh instance; workers inherit it from the runner.
process.env.RAILYARD_SETUP_TOKEN ||= crypto.randomBytes(24).toString('hex');

const port = Number(process.env.RAILYARD_E2E_PORT || 7391);
const routerPort = Number(process.env.RAILYARD_E2E_ROUTER_PORT || port + 1);
const githubPort = Number(process.env.FAKE_GITHUB_PORT || port + 2);
const root = path.resolve(__dirname, '..');
const server = process.env.RAILYARD_SERVER_BIN || path.join(root, 'target/debug/railyard-server');

module.exports = defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    viewport: { width: 1360, height: 860 },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  projects: [{ name: 'chromium', use: { browserName: 'chromium' } }],
  webServer: [
  {
    command: `node fake-github.js`,
    cwd: __dirname,
    url: `http://127.0.0.1:${githubPort}/health`,
    reuseExistingServer: false,
    env: { ...process.env, FAKE_GITHUB_PORT: String(githubPort) },
  },
  {
    command: `"${server}" serve`,
    cwd: root,
    url: `http://127.0.0.1:${port}/api/v1/health`,
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: 'pipe',
    stderr: 'pipe',
    gracefulShutdown: { signal: 'SIGTERM', timeout: 15_000 },
    env: {
      ...process.env,
      RAILYARD_LISTEN: `127.0.0.1:${port}`,
      RAILYARD_ROUTER_LISTEN: `127.0.0.1:${routerPort}`,
      RAILYARD_DASHBOARD_DIR: process.env.RAILYARD_DASHBOARD_DIR || path.join(root, 'dist'),
      RAILYARD_DATA_DIR: process.env.RAILYARD_DATA_DIR || path.join(__dirname, 'artifacts/data'),
      RAILYARD_SETUP_TOKEN: process.env.RAILYARD_SETUP_TOKEN,
      // The workflow specs deploy repositories they make in the temporary directory.
      RAILYARD_FILE_SOURCE_ROOTS: fs.realpathSync(os.tmpdir()),
      GITHUB_CLIENT_ID: 'e2e-client',
      GITHUB_CLIENT_SECRET: 'e2e-secret',
      GITHUB_OAUTH_URL: `http://127.0.0.1:${githubPort}`,
      GITHUB_API_URL: `http://127.0.0.1:${githubPort}`,
      GITHUB_URL: `http://127.0.0.1:${githubPort}`,
    },
  },
  ],
});

// A git repository for a browser test to deploy from: branch main, one commit of `files`.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** A git repository (branch main) holding `files`; its file:// URL. */
function gitRepo(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'railyard-e2e-repo-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const git = (...args) => execFileSync('git', args, { cwd: dir, stdio: 'pipe' });
  git('init', '-q', '-b', 'main');
  git('add', '.');
  git('-c', 'user.name=e2e', '-c', 'user.email=e2e@example.com', 'commit', '-q', '-m', 'app');
  return `file://${dir}`;
}

module.exports = { gitRepo };

// `npx cdk synth` / `cdk deploy` entry point (cdk.json "app").
import { App } from 'aws-cdk-lib';
import { SettingsError } from '../lib/sshca-settings.js';
import { buildSshcaApp } from '../lib/sshca-app.js';

const app = new App();
try {
  buildSshcaApp(app);
} catch (err) {
  if (!(err instanceof SettingsError)) throw err;
  process.stderr.write(`sshca: ${err.message}\n`);
  process.exit(1);
}
app.synth();

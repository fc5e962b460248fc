// Placeholder so the CLI builds while the local audit view is written (it replaces this file).
import { ClientError } from './client-error.js';
import type { CommandIo } from './cli-ssh.js';

export async function runAuditUi(_args: readonly string[], _io: CommandIo): Promise<number> {
  throw new ClientError('CLIENT_USAGE', 'sshca audit ui is not built yet');
}

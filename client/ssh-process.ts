// Runs ssh for `sshca ssh`: the terminal stays ssh's, its stderr passes
// through byte for byte, and we notice whether sshd refused every key.
import { spawn } from 'node:child_process';
import { ClientError } from './client-error.js';

/** ssh's last words when no key was accepted ("user@host: Permission denied (publickey)."); printed at every LogLevel but QUIET. */
const PUBLICKEY_DENIED = /Permission denied \([^)]*\bpublickey\b[^)]*\)/;
/** How much of the end of stderr is kept: ssh says it last, after any banner. */
const TAIL_BYTES = 4096;

/** How ssh ended. */
export interface SshExit {
  readonly code: number;
  /** Exit 255 after "Permission denied (publickey…)": no remote command ran. */
  readonly publicKeyDenied: boolean;
}

/** Runs `ssh args…`; `stderr` receives ssh's stderr unchanged (binary from a remote command included). */
export function runSshProcess(args: readonly string[], env: NodeJS.ProcessEnv, stderr: NodeJS.WritableStream): Promise<SshExit> {
  const child = spawn('ssh', args, { stdio: ['inherit', 'inherit', 'pipe'], env });
  let tail = Buffer.alloc(0);
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr.write(chunk);
    tail = Buffer.concat([tail, chunk]).subarray(-TAIL_BYTES);
  });
  return new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new ClientError('CLIENT_SSH_FAILED', `cannot run ssh: ${err.message}`, { cause: err })));
    // 'close', not 'exit': stderr is read to its end before we judge it.
    child.on('close', (exitCode, signal) => {
      const code = exitCode ?? (signal ? 128 + 1 : 255);
      resolve({ code, publicKeyDenied: code === 255 && PUBLICKEY_DENIED.test(tail.toString('latin1')) });
    });
  });
}

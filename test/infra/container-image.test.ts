// The container image, tested without Docker (it does not run on the
// project's machines): the Dockerfile is parsed, the steps that make the
// runtime stage are run as written in a clean directory outside the repo
// (the prod-deps stage's `npm ci --omit=dev`, the runtime's COPYs; the build
// stage's dist/ is the one `npm run build` made before the tests), and the
// server is started exactly as ENTRYPOINT starts it, in production mode with
// a file CA key and a SQLite audit store. Its HEALTHCHECK command then runs
// against it. .dockerignore is evaluated with Docker's own matching rules,
// and the file is validated by dockerfile-utils (hadolint cannot be
// installed from the registries these machines reach).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { freePort } from '../../scripts/throwaway-sshd.js';

// One `npm ci --omit=dev` that compiles better-sqlite3: about 2 minutes on
// this machine's 2 cores alone, longer while other test files run beside it.
t.setTimeout(600_000);

const ROOT = join(import.meta.dirname, '..', '..');
const BASE_IMAGE = 'node:20-bookworm-slim';
/** Where the base image has Node (its headers are in include/node), and where this machine has it. */
const IMAGE_NODE_PREFIX = '/usr/local';
const HOST_NODE_PREFIX = dirname(dirname(process.execPath));

// ---- Dockerfile ----------------------------------------------------------

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}
interface Stage {
  readonly name: string;
  readonly base: string;
  readonly instructions: readonly Instruction[];
}

/** Instructions by stage: comment lines dropped (also inside a continuation), `\` continuations joined. */
function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  let parts: string[] = [];
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    if (/^\s*#/.test(raw) || (parts.length === 0 && raw.trim() === '')) return;
    if (parts.length === 0) start = i + 1;
    const continued = /\\\s*$/.test(raw);
    parts.push(raw.replace(/\\\s*$/, '').trim());
    if (continued) return;
    const joined = parts.join(' ').trim();
    const [keyword = ''] = joined.split(/\s/, 1);
    instructions.push({ keyword: keyword.toUpperCase(), args: joined.slice(keyword.length).trim(), line: start });
    parts = [];
  });
  const stages: { name: string; base: string; instructions: Instruction[] }[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const words = shellWords(ins.args).filter((w) => !w.startsWith('--'));
      stages.push({ base: words[0]!, name: words[1]?.toUpperCase() === 'AS' ? words[2]! : String(stages.length), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw new Error(`line ${ins.line}: ${ins.keyword} before FROM`);
    } else stages.at(-1)!.instructions.push(ins);
  }
  return stages;
}

/** Splits like the Dockerfile's own word splitting: whitespace, "…" and '…' quotes, backslash escapes. */
function shellWords(s: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < s.length) word += s[++i]!;
      else word += c;
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\' && i + 1 < s.length) word = (word ?? '') + s[++i]!;
    else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** `--name=value` flags first, then the rest. */
function flagsOf(args: string): { flags: Map<string, string>; rest: string } {
  const flags = new Map<string, string>();
  let rest = args.trim();
  for (let m = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest); m; m = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest)) {
    flags.set(m[1]!, m[2] ?? 'true');
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

/** The argv a CMD/ENTRYPOINT/RUN form runs: the exec (JSON) form as is, the shell form through /bin/sh -c. */
function argvOf(form: string): string[] {
  return form.trim().startsWith('[') ? (JSON.parse(form) as string[]) : ['/bin/sh', '-c', form];
}

function envOf(ins: Instruction): [string, string][] {
  const words = shellWords(ins.args);
  if (!words[0]?.includes('=')) return [[words[0]!, words.slice(1).join(' ')]]; // legacy `ENV key value`
  return words.map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]);
}

function copyOf(ins: Instruction): { from?: string; sources: string[]; dest: string } {
  const { flags, rest } = flagsOf(ins.args);
  const words = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : shellWords(rest);
  return { ...(flags.has('from') ? { from: flags.get('from')! } : {}), sources: words.slice(0, -1), dest: words.at(-1)! };
}

const of = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);
/** A stage whose only work is ADDing files from https URLs. */
const remoteOnly = (stage: Stage) => stage.instructions.length > 0 && stage.instructions.every((i) => i.keyword === 'ADD' && /\shttps:\/\//.test(` ${i.args}`));
/** The stage's working directory once all its WORKDIRs have applied. */
const workdirOf = (stage: Stage) => of(stage, 'WORKDIR').reduce((dir, w) => posix.resolve(dir, w.args), '/');

// ---- .dockerignore (moby/patternmatcher's rules) ---------------------------

interface IgnoreRule {
  readonly pattern: string;
  readonly negate: boolean;
  readonly regex: RegExp;
}

function parseDockerignore(text: string): IgnoreRule[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = posix.normalize(negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
      let re = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i]!;
        if (c === '[') throw new Error(`.dockerignore: character classes are not evaluated here (${l})`);
        if (c === '*' && pattern[i + 1] === '*') {
          i++;
          if (pattern[i + 1] === '/') {
            i++;
            re += '(.*/)?';
          } else re += '.*';
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+()|{}^$\\]/g, '\\$&');
      }
      return { pattern, negate, regex: new RegExp(`^${re}$`) };
    });
}

/** Docker's MatchesOrParentMatches: the last rule that matches the path or one of its parent directories decides. */
function ignored(rules: readonly IgnoreRule[], path: string): boolean {
  const parts = path.split('/');
  let excluded = false;
  for (const rule of rules) {
    let match = rule.regex.test(path);
    for (let i = 1; !match && i < parts.length; i++) match = rule.regex.test(parts.slice(0, i).join('/'));
    if (match) excluded = !rule.negate;
  }
  return excluded;
}

/** Every file of the build context (relative paths), as Docker would send it. */
function contextFiles(rules: readonly IgnoreRule[]): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(ROOT, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        // An excluded directory is still walked when a `!` rule could let something inside it back in.
        if (ignored(rules, p) && !rules.some((r) => r.negate && (r.pattern.startsWith(`${p}/`) || r.pattern.startsWith('*')))) continue;
        walk(p);
      } else if (!ignored(rules, p)) out.push(p);
    }
  };
  walk('');
  return out;
}

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const ignoreRules = parseDockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
const runtime = dockerfile.at(-1)!;
const stageNamed = (name: string) => dockerfile.find((s) => s.name === name);
const runs = (stage: Stage) => of(stage, 'RUN').map((i) => i.args);
const buildStage = dockerfile.find((s) => runs(s).some((r) => /\bnpm run build\b/.test(r)));

t.test('Dockerfile: stages', async (t) => {
  t.ok(dockerfile.length >= 3, 'multi-stage');
  for (const stage of dockerfile) {
    t.equal(stage.base.split('@')[0], BASE_IMAGE, `stage ${stage.name} is FROM ${BASE_IMAGE} (pinned by tag; a digest pin is better, see the Dockerfile)`);
    t.notOk(/:latest\b/.test(stage.base), 'never :latest');
  }
  t.equal(new Set(dockerfile.map((s) => s.name)).size, dockerfile.length, 'stage names are unique');

  t.ok(buildStage, 'a build stage runs `npm run build`');
  t.ok(buildStage && runs(buildStage).some((r) => /\bnpm ci\b/.test(r) && !/--omit[= ]dev/.test(r)), 'after `npm ci` with its devDependencies (tsc, esbuild)');

  const copies = of(runtime, 'COPY').map(copyOf);
  const modules = copies.find((c) => c.sources.some((s) => /(^|\/)node_modules\/?$/.test(s)));
  t.ok(modules?.from, 'the runtime copies node_modules from another stage');
  const deps = stageNamed(modules?.from ?? '');
  t.ok(deps && runs(deps).some((r) => /\bnpm ci\b.*--omit=dev/.test(r)), 'which installs production dependencies only (`npm ci --omit=dev`)');
  t.ok(deps && runs(deps).some((r) => /apt-get install\b.*\bpython3\b/.test(r) && /\bmake\b/.test(r) && /\bg\+\+/.test(r)), 'with python3, make and g++ to compile better-sqlite3');
  t.notOk(runs(runtime).some((r) => /apt-get|\bnpm (ci|install|i)\b|\bg\+\+|\bmake\b/.test(r)), 'the runtime stage installs and compiles nothing: no compiler, no npm install');

  const users = of(runtime, 'USER').map((u) => u.args.split(':')[0]!);
  t.ok(users.length > 0, 'the runtime stage sets USER');
  t.notOk(['root', '0', ''].includes(users.at(-1) ?? ''), `and the last USER is not root (${users.at(-1)})`);
  const lastUserLine = of(runtime, 'USER').at(-1)?.line ?? Infinity;
  t.ok(of(runtime, 'ENTRYPOINT').every((e) => e.line > lastUserLine), 'ENTRYPOINT comes after it');

  t.notOk(runtime.instructions.some((i) => /--dev\b|--include[= ]dev/.test(i.args)), 'the runtime stage never says --dev');
  const env = new Map(of(runtime, 'ENV').flatMap(envOf));
  t.equal(env.get('NODE_ENV'), 'production');
  t.equal(env.get('SSHCA_HOST'), '0.0.0.0', 'listens on every interface of the container');
  t.notOk([...env.keys()].some((k) => /^AWS_(ACCESS|SECRET|SESSION)/.test(k) || /KEY|SECRET|PASSWORD|TOKEN/.test(k)), 'no credential in ENV');
  t.notOk(dockerfile.some((s) => of(s, 'ARG').some((a) => /KEY|SECRET|PASSWORD|TOKEN/i.test(a.args))), 'nor in ARG');

  const command = [...of(runtime, 'ENTRYPOINT').slice(-1).flatMap((e) => argvOf(e.args)), ...of(runtime, 'CMD').slice(-1).flatMap((c) => argvOf(c.args))];
  t.same(command, ['node', 'dist/server/bin/sshca-server.js'], 'ENTRYPOINT runs the server (exec form: signals reach node)');

  const healthchecks = of(runtime, 'HEALTHCHECK');
  t.equal(healthchecks.length, 1, 'one HEALTHCHECK');
  const check = flagsOf(healthchecks[0]?.args ?? '').rest;
  t.match(check, /^CMD \[/, 'exec form');
  t.equal(argvOf(check.slice(4))[0], 'node', 'run by node itself (a slim image has no curl)');
  t.match(check, /\/healthz/);
});

t.test('Dockerfile: the rules hadolint would apply', async (t) => {
  const all = dockerfile.flatMap((s) => s.instructions.map((i) => ({ stage: s, ins: i })));
  for (const { ins } of all.filter(({ ins }) => ins.keyword === 'RUN')) {
    if (/\bapt-get install\b/.test(ins.args)) {
      t.match(ins.args, /apt-get install -y/, `line ${ins.line}: non-interactive (DL3014)`);
      t.match(ins.args, /--no-install-recommends/, `line ${ins.line}: --no-install-recommends (DL3015)`);
      t.match(ins.args, /rm -rf \/var\/lib\/apt\/lists\/\*/, `line ${ins.line}: apt lists removed (DL3009)`);
    }
    t.notMatch(ins.args, /(^|\s|&&)(apt|sudo|cd)\s/, `line ${ins.line}: no apt, sudo or cd in RUN (DL3027, DL3004, DL3003)`);
    t.notMatch(ins.args, /\|/, `line ${ins.line}: no pipes (which would need pipefail, DL4006)`);
  }
  for (const { ins } of all.filter(({ ins }) => ins.keyword === 'WORKDIR')) t.ok(ins.args.startsWith('/'), `line ${ins.line}: absolute WORKDIR (DL3000)`);
  // ADD only for a file fetched over HTTPS (DL3020 is about local files): the RDS CA bundle, from AWS.
  for (const { ins } of all.filter(({ ins }) => ins.keyword === 'ADD')) {
    t.match(ins.args, /^(?:--checksum=sha256:[0-9a-f]{64} )?https:\/\/truststore\.pki\.rds\.amazonaws\.com\/\S+ \S+$/, `line ${ins.line}: ADD only of AWS's RDS CA bundle over HTTPS, never a local file (DL3020)`);
  }
  const runtimeStage = dockerfile.at(-1)!;
  const bundle = of(runtimeStage, 'COPY').find((c) => copyOf(c).dest === '/etc/ssl/certs/rds-global-bundle.pem');
  t.ok(bundle, 'the runtime carries the RDS CA bundle where SSHCA_STORE (the CDK app) names it');
  // ADD from a URL writes 0600 root: without --chmod the server (uid 1000) could not read it and would never reach the database.
  t.match(bundle?.args ?? '', /--chmod=0?644\b/, 'readable by the non-root server user');
  t.notOk(all.some(({ ins }) => ins.keyword === 'MAINTAINER'), 'no MAINTAINER (DL4000)');
  for (const { stage, ins } of all.filter(({ ins }) => ins.keyword === 'COPY')) {
    const from = copyOf(ins).from;
    if (from !== undefined) t.ok(dockerfile.indexOf(stageNamed(from)!) >= 0 && dockerfile.indexOf(stageNamed(from)!) < dockerfile.indexOf(stage), `line ${ins.line}: --from names an earlier stage (DL3022, DL3023)`);
    if (!copyOf(ins).dest.startsWith('/')) t.ok(stage.instructions.some((i) => i.keyword === 'WORKDIR' && i.line < ins.line), `line ${ins.line}: relative destination after WORKDIR (DL3045)`);
  }
  for (const stage of dockerfile) for (const kw of ['ENTRYPOINT', 'CMD', 'HEALTHCHECK']) t.ok(of(stage, kw).length <= 1, `stage ${stage.name}: at most one ${kw} (DL4003, DL4004)`);
  for (const { ins } of all.filter(({ ins }) => ins.keyword === 'ENTRYPOINT' || ins.keyword === 'CMD')) t.ok(ins.args.startsWith('['), `line ${ins.line}: JSON form (DL3025)`);
});

t.test('Dockerfile: dockerfile-utils validates it without a diagnostic', async (t) => {
  const validate = await loadDockerfileUtils(t);
  if (!validate) return;
  const diagnostics = validate(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  t.same(diagnostics.map((d) => `line ${d.range.start.line + 1}: ${d.message}`), []);
});

type Validate = (content: string) => { message: string; range: { start: { line: number } } }[];

/** dockerfile-utils from node_modules, or else installed (pinned) into a temp dir; skipped only when that fails outside CI. */
async function loadDockerfileUtils(t: Test): Promise<Validate | undefined> {
  const local = join(ROOT, 'node_modules', 'dockerfile-utils');
  let dir = existsSync(local) ? ROOT : undefined;
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), 'sshca-lint-'));
    t.teardown(() => rmSync(dir!, { recursive: true, force: true }));
    const r = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', '--prefix', dir, 'dockerfile-utils@0.16.3'], { encoding: 'utf8', env: cleanEnv(), timeout: 120_000 });
    if (r.status !== 0) {
      if (process.env.CI === 'true') t.fail(`dockerfile-utils could not be installed and CI=true: ${r.stderr}`);
      else t.plan(0, `dockerfile-utils could not be installed (npm install dockerfile-utils@0.16.3): ${r.stderr.trim().split('\n').at(-1)}`);
      return undefined;
    }
  }
  const mod = (await import(pathToFileURL(join(dir, 'node_modules', 'dockerfile-utils', 'lib', 'main.js')).href)) as { validate?: Validate; default?: { validate: Validate } };
  return mod.validate ?? mod.default!.validate;
}

t.test('.dockerignore', async (t) => {
  const mustExclude = [
    'node_modules/fastify/package.json', 'dist/server/main.js', '.git/HEAD', '.tap/fixtures/x/checkpoint.pem', '.sshca-dev/ca/user-ed25519.pem', '.sshca-dev/aws-credentials',
    'test/fixtures/kms-fixture.ts', 'test/infra/container-image.test.ts', 'docs/deploy.md', 'infra/cdk/node_modules/aws-cdk-lib/package.json', 'infra/cdk/cdk.out/manifest.json', 'cdk.out/tree.json',
    'server/node_modules/x/index.js', 'server/dist/x.js', 'server/ca/key.pem', 'npm-debug.log', '.env',
  ];
  for (const p of mustExclude) t.ok(ignored(ignoreRules, p), `excludes ${p}`);

  // Every file a COPY takes from the context must be in it, or `docker build` fails.
  const contextCopies = dockerfile.flatMap((s) => of(s, 'COPY').map(copyOf).filter((c) => c.from === undefined).flatMap((c) => c.sources));
  for (const source of contextCopies) {
    t.ok(existsSync(join(ROOT, source)), `COPY ${source}: exists`);
    t.notOk(ignored(ignoreRules, posix.normalize(source).replace(/\/$/, '')), `COPY ${source}: in the build context`);
  }
  // What the build compiles (tsconfig.build.json's include) is all copied in.
  const include = (JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] }).include;
  const buildCopies = buildStage ? of(buildStage, 'COPY').map(copyOf).flatMap((c) => c.sources.map((s) => s.replace(/\/$/, ''))) : [];
  for (const dir of include) t.ok(buildCopies.includes(dir), `the build stage copies ${dir}/ (tsconfig.build.json includes it)`);

  const files = contextFiles(ignoreRules);
  const bytes = files.reduce((n, f) => n + statSync(join(ROOT, f)).size, 0);
  t.comment(`build context: ${files.length} files, ${(bytes / 1024).toFixed(0)} KiB`);
  t.ok(bytes < 4 * 1024 * 1024, 'the build context stays small');
  t.same(files.filter((f) => /\.pem$|credentials|(^|\/)\.sshca-dev\/|(^|\/)test\//.test(f)), [], 'no key, credential or test file in it');
});

// ---- the runtime stage, run ------------------------------------------------

/**
 * This process's environment without what tap and `npm test` put there: tap's
 * loaders (NODE_OPTIONS) and the lowercase npm_* that npm exports to scripts
 * (npm_config_local_prefix would point npm at this repo). A user's own
 * NPM_CONFIG_* (a registry mirror) stays.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TAP|TAP_.*|_TAPJS.*|NODE_OPTIONS|NODE_V8_COVERAGE|INIT_CWD|npm_.*)$/.test(k)));
}

/** An ENV value as it applies on this machine: the base image's Node prefix is this machine's. */
const onThisMachine = (value: string) => (value === IMAGE_NODE_PREFIX ? HOST_NODE_PREFIX : value);

interface BuiltStage {
  readonly root: string;
  readonly workdir: string;
  readonly env: Record<string, string>;
}

/**
 * Runs `stage` under `root` as Docker would: WORKDIR, ENV, COPY from the
 * context (filtered by .dockerignore) or from an earlier stage, RUN through
 * /bin/sh -c. The build stage is not run again: its output is the repo's
 * own dist/. `apt-get` steps are not run either: what they install must be
 * on this machine already.
 */
function runStage(t: Test, stage: Stage, root: string, built: Map<string, BuiltStage>, timings: string[]): BuiltStage {
  let workdir = '/';
  const env: Record<string, string> = {};
  const inRoot = (base: string, p: string) => join(base, posix.resolve(workdir, p));
  for (const ins of stage.instructions) {
    if (ins.keyword === 'WORKDIR') {
      workdir = posix.resolve(workdir, ins.args);
      mkdirSync(join(root, workdir), { recursive: true });
    } else if (ins.keyword === 'ENV') {
      for (const [k, v] of envOf(ins)) env[k] = v;
    } else if (ins.keyword === 'COPY') {
      const { from, sources, dest } = copyOf(ins);
      for (const source of sources) {
        let src: string;
        if (from === undefined) src = join(ROOT, source);
        else if (remoteOnly(stageNamed(from)!)) {
          // A stage that only fetches a file over HTTPS (the RDS CA bundle): not fetched offline; the server here uses SQLite.
          t.comment(`line ${ins.line}: ${source} from stage ${from} is fetched over HTTPS at build time; not fetched here`);
          continue;
        } else if (stageNamed(from) === buildStage) {
          const rel = posix.relative(workdirOf(buildStage!), posix.resolve(workdirOf(buildStage!), source));
          if (!rel.startsWith('dist')) throw new Error(`line ${ins.line}: only dist/ is taken from the build stage (${source})`);
          src = join(ROOT, rel);
        } else {
          const s = built.get(from) ?? runStage(t, stageNamed(from)!, mkdtempSync(join(dirname(root), `${from}-`)), built, timings);
          built.set(from, s);
          src = join(s.root, source);
        }
        const target = dest.endsWith('/') && statSync(src).isFile() ? join(inRoot(root, dest), posix.basename(source)) : inRoot(root, dest);
        mkdirSync(dirname(target), { recursive: true });
        cpSync(src, target, { recursive: true, filter: (p) => from !== undefined || p === src || !ignored(ignoreRules, relative(ROOT, p)) });
      }
    } else if (ins.keyword === 'RUN') {
      if (/^apt-get\b/.test(ins.args)) {
        const packages = /apt-get install\s+(.*?)(&&|$)/.exec(ins.args)?.[1]?.split(/\s+/).filter((w) => w && !w.startsWith('-')) ?? [];
        for (const pkg of packages) t.ok(spawnSync('sh', ['-c', `command -v ${pkg}`]).status === 0, `line ${ins.line}: ${pkg} (apt-get) is on this machine`);
        continue;
      }
      const started = Date.now();
      const stageEnv = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, onThisMachine(v)]));
      const r = spawnSync('/bin/sh', ['-c', ins.args], { cwd: join(root, workdir), env: { ...cleanEnv(), ...stageEnv }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      timings.push(`${stage.name}: RUN ${ins.args.slice(0, 60)}… ${((Date.now() - started) / 1000).toFixed(1)} s`);
      if (r.status !== 0) throw new Error(`line ${ins.line}: RUN ${ins.args} failed (${r.status ?? r.signal}):\n${r.stderr.slice(-4000)}`);
    }
  }
  return { root, workdir, env };
}

t.test('the runtime stage, run as written', async (t) => {
  const built = join(ROOT, 'dist', 'server', 'bin', 'sshca-server.js');
  if (!existsSync(built)) {
    t.fail('dist/ is missing: `npm run build` runs before the tests');
    return;
  }
  // Outside the repo, and with no node_modules above it: Node must find the image's modules or none.
  const tmp = mkdtempSync(join(tmpdir(), 'sshca-image-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  for (let d = tmp; d !== dirname(d); d = dirname(d)) t.notOk(existsSync(join(dirname(d), 'node_modules')), `no node_modules above the image root (${dirname(d)})`);

  const started = Date.now();
  const timings: string[] = [];
  const image = runStage(t, runtime, join(tmp, 'runtime'), new Map(), timings);
  const app = join(image.root, image.workdir);
  for (const line of timings) t.comment(line);
  t.comment(`image assembled in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  t.test('contents', async (t) => {
    t.same(readdirSync(app).sort(), ['dist', 'node_modules', 'package-lock.json', 'package.json'], 'the app directory holds the manifest, the built code and the modules');
    const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    for (const name of ['tap', 'typescript', 'esbuild', 'eslint']) t.ok(name in pkg.devDependencies, `${name} is a devDependency`);
    for (const name of ['tap', 'typescript', 'esbuild', 'eslint']) t.notOk(existsSync(join(app, 'node_modules', name)), `${name} is not installed`);
    // A devDependency that a production dependency also needs (@smithy/types under the AWS SDK) stays; the lockfile says which.
    const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    for (const name of Object.keys(pkg.devDependencies)) {
      if (lock.packages[`node_modules/${name}`]?.dev) t.notOk(existsSync(join(app, 'node_modules', name)), `devDependency ${name} is not installed`);
      else t.ok(existsSync(join(app, 'node_modules', name)), `devDependency ${name} is installed: a production dependency needs it too`);
    }
    for (const name of Object.keys(pkg.dependencies)) t.ok(existsSync(join(app, 'node_modules', name, 'package.json')), `dependency ${name} is installed`);
    const tree = JSON.parse(readFileSync(join(app, 'node_modules', '.package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    t.same(Object.entries(tree.packages).filter(([, p]) => p.dev).map(([k]) => k), [], 'nothing in the installed tree is dev-only');
    t.ok(existsSync(join(app, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')), 'better-sqlite3 was compiled');
    const appFiles: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.name === 'node_modules') continue;
        if (e.isDirectory()) walk(join(d, e.name));
        else appFiles.push(relative(app, join(d, e.name)));
      }
    };
    walk(app);
    t.same(appFiles.filter((f) => /\.pem$|credentials|\.sshca-dev|policy\.ya?ml$|\.db$|(^|\/)(scripts|bench|test)\//.test(f)), [], 'no key, credential, dev data, demo or test code');
  });

  t.test('the server starts as ENTRYPOINT starts it, and HEALTHCHECK passes', async (t) => {
    const etc = join(tmp, 'etc-sshca');
    mkdirSync(etc);
    const pem = (alg: 'ed25519') => generateKeyPairSync(alg).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    writeFileSync(join(etc, 'user-ca.pem'), pem('ed25519'), { mode: 0o600 });
    writeFileSync(join(etc, 'checkpoint.pem'), pem('ed25519'), { mode: 0o600 });
    writeFileSync(join(etc, 'policy.yaml'), "accounts: ['111111111111']\nrules:\n  - name: users\n    match: { account: '111111111111' }\n    principals: ['{{user}}']\n");
    const port = await freePort();
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: tmp,
      ...image.env,
      SSHCA_HOST: '127.0.0.1',
      SSHCA_PORT: String(port),
      SSHCA_AUDIENCE: `http://127.0.0.1:${port}`,
      SSHCA_STS_ENDPOINTS: 'https://sts.amazonaws.com/',
      SSHCA_POLICY: join(etc, 'policy.yaml'),
      SSHCA_USER_CA: `file:${join(etc, 'user-ca.pem')}`,
      SSHCA_CHECKPOINT_KEY: join(etc, 'checkpoint.pem'),
      SSHCA_AUDIT_DB: join(tmp, 'audit.db'),
      // Not the fixed default metrics port: other test files' servers run beside this one.
      SSHCA_METRICS_PORT: '0',
    };
    const [cmd, ...args] = argvOf(of(runtime, 'ENTRYPOINT').at(-1)!.args);
    const child = spawn(cmd!, args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => stop(child));
    const stderr = await listening(child);
    t.match(stderr, `sshca-server (production) listening on http://127.0.0.1:${port}`, 'production mode');

    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    t.equal(health.status, 200, '/healthz');
    t.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200, '/readyz: the file CA key signs and the SQLite store takes writes');
    t.ok(existsSync(env.SSHCA_AUDIT_DB), 'the audit database is the compiled better-sqlite3 at work');
    t.equal((await fetch(`http://127.0.0.1:${port}/v1/ca/user.pub`)).status, 200, 'the user CA is published');

    const [hcCmd, ...hcArgs] = argvOf(flagsOf(of(runtime, 'HEALTHCHECK')[0]!.args).rest.replace(/^CMD\s+/, ''));
    const healthcheck = () => new Promise<number | null>((resolve) => spawn(hcCmd!, hcArgs, { cwd: app, env, stdio: 'ignore' }).on('exit', resolve));
    t.equal(await healthcheck(), 0, 'the HEALTHCHECK command exits 0 against the running server');
    await stop(child);
    t.not(await healthcheck(), 0, 'and not once the server has stopped');
  });
});

/** Resolves with stderr once the server says it listens; rejects if it exits first. */
function listening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`no "listening" in 30 s: ${stderr}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/listening on/.test(stderr)) {
        clearTimeout(timer);
        resolve(stderr);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}): ${stderr}`));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

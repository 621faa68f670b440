// The training pod of deploy/base, run on this machine the way the kubelet runs it: the Job's pod
// template read from the kustomize base (not copied), each volume a directory (emptyDir empty, a
// Secret volume holding its items), each container's args and env as written — paths under a mount
// point moved to that volume's directory, each container port a free loopback port (the pod's IP is
// loopback here) — its securityContext's user when this runs as root, the image's ENTRYPOINT, ENV and
// WORKDIR from the Dockerfile, and the probes as the kubelet runs them. What cannot exist here is
// replaced, and only that: the cluster's MLflow address (the test's server) and the trainer's image
// (a command the test gives).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '@training-callbacks/mlflow-bridge/testing';
import { parseAllDocuments } from 'yaml';
import { healthOf } from './health.ts';
import { type LoggedProcess, spawnLogged } from './processes.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const BASE = path.join(ROOT, 'deploy/base');
const SIDECAR_MAIN = path.join(ROOT, 'apps/sidecar/src/main.ts');

// The few fields of the Kubernetes objects read here (deploy/test validates them against the schemas).
export interface Probe {
  grpc?: { port: number; service?: string };
  httpGet?: { path: string; port: number | string };
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
  initialDelaySeconds?: number;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: Array<{
    configMapRef?: { name: string; optional?: boolean };
    secretRef?: { name: string; optional?: boolean };
  }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  restartPolicy?: string;
}
interface PodSpec {
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsUser?: number; runAsGroup?: number; fsGroup?: number };
  initContainers?: Container[];
  containers: Container[];
  volumes?: Array<{
    name: string;
    emptyDir?: object;
    secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  }>;
}
interface KubeObject {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: { template: { metadata?: { labels?: Record<string, string> }; spec: PodSpec } };
}

/** The objects of deploy/base, in the order its kustomization lists them. */
export function baseObjects(): KubeObject[] {
  const read = (file: string) =>
    parseAllDocuments(readFileSync(path.join(BASE, file), 'utf8')).map((d) => d.toJS() as KubeObject);
  const [kustomization] = read('kustomization.yaml') as unknown as Array<{ resources: string[] }>;
  return kustomization!.resources.flatMap(read);
}

/** The image's ENTRYPOINT, ENV and WORKDIR (the Dockerfile's final stage). */
export function imageConfig(): { entrypoint: string[]; env: Record<string, string>; workingDir: string } {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const [, line] of finalStage.matchAll(/^ENV (.*)$/gm))
    for (const [, k, v] of line!.matchAll(/(\w+)=(\S+)/g)) env[k!] = v!;
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(finalStage);
  const workdir = /^WORKDIR (\S+)$/m.exec(finalStage);
  if (!entry || !workdir) throw new Error('the Dockerfile has no ENTRYPOINT or WORKDIR in its final stage');
  return { entrypoint: JSON.parse(entry[1]!) as string[], env, workingDir: workdir[1]! };
}

/**
 * Whether `user` can run the pinned Node on the workspace's sources (a checkout under a directory
 * only root may enter cannot): if not, the containers run as this process's user, and it is said.
 */
function canRunAs(user: { uid: number; gid: number }): boolean {
  const probe = spawnSync(
    process.execPath,
    [
      '-e',
      `require('node:fs').accessSync(${JSON.stringify(SIDECAR_MAIN)}, require('node:fs').constants.R_OK)`,
    ],
    { ...user, stdio: 'pipe' },
  );
  if (probe.status === 0) return true;
  const why =
    probe.error?.message ??
    probe.stderr
      .toString()
      .split('\n')
      .find((line) => /Error/.test(line));
  console.warn(
    `pod rehearsal: uid ${user.uid} cannot run ${process.execPath} on ${SIDECAR_MAIN} (${why}); ` +
      `the containers run as uid ${process.getuid?.()} instead`,
  );
  return false;
}

const ADDRESS = /^(0\.0\.0\.0|127\.0\.0\.1|localhost|\[::\]|\[::1\]):(\d+)$/;

/** A container of the pod as it runs here. */
export interface PlannedContainer {
  readonly spec: Container;
  readonly args: string[];
  readonly env: Record<string, string>;
  /** A manifest path (under one of the container's mount points) as it is here. */
  hostPath(manifestPath: string): string;
  /** A probe's target here: the gRPC or HTTP port on loopback. */
  probeTarget(probe: Probe): { port: number; grpcService?: string; httpPath?: string };
}

export interface Pod extends AsyncDisposable {
  readonly spec: PodSpec;
  readonly sidecar: PlannedContainer;
  readonly trainer: PlannedContainer;
  /** The Job's name (the label `batch.kubernetes.io/job-name`), unique per rehearsal. */
  readonly jobName: string;
  readonly graceSeconds: number;
  /** Each volume's directory. */
  readonly volumes: Record<string, string>;
  /** The user the containers run as (the pod's securityContext) when this runs as root. */
  readonly user: { uid: number; gid: number } | undefined;
  /** Starts the sidecar with the image's ENTRYPOINT (from source: `--conditions` and main.ts). */
  startSidecar(): LoggedProcess;
  /** Starts the trainer container with `command` in place of its image's. */
  startTrainer(command: readonly string[]): LoggedProcess;
}

export interface PodOptions {
  /** The Job's name (the manifest's is fixed; the shared MLflow server needs one per test). */
  jobName: string;
  /** What stands in for cluster services: MLFLOW_TRACKING_URI of the test's server. */
  envOverrides: Record<string, string>;
  /** The Secrets the pod refers to, by name: key → content. */
  secrets: Record<string, Record<string, string>>;
  /**
   * Flags whose value a deploy overlay would change, flag → value: `--db` of a PostgreSQL database
   * instead of the emptyDir's SQLite file (the PostgreSQL run).
   */
  argOverrides?: Record<string, string>;
}

/** Lays out the pod of deploy/base here; dispose to remove its volumes. */
export async function preparePod(options: PodOptions): Promise<Pod> {
  const objects = baseObjects();
  const job = objects.find((o) => o.kind === 'Job');
  if (!job?.spec) throw new Error('deploy/base has no Job');
  const spec = job.spec.template.spec;
  const configMaps = new Map(
    objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o.data ?? {}]),
  );
  const asRoot = process.getuid?.() === 0;
  const podUser =
    asRoot && spec.securityContext?.runAsUser !== undefined
      ? {
          uid: spec.securityContext.runAsUser,
          gid:
            spec.securityContext.fsGroup ?? spec.securityContext.runAsGroup ?? spec.securityContext.runAsUser,
        }
      : undefined;
  const user = podUser && canRunAs(podUser) ? podUser : undefined;

  const root = mkdtempSync(path.join(tmpdir(), 'tc-pod-'));
  chmodSync(root, 0o755);
  const volumes: Record<string, string> = {};
  for (const volume of spec.volumes ?? []) {
    const dir = path.join(root, 'volumes', volume.name);
    mkdirSync(dir, { recursive: true });
    volumes[volume.name] = dir;
    if (volume.secret) {
      const data = options.secrets[volume.secret.secretName];
      if (!data)
        throw new Error(`the pod mounts Secret ${volume.secret.secretName}: give it in options.secrets`);
      const items = volume.secret.items ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const item of items) {
        if (data[item.key] === undefined)
          throw new Error(`Secret ${volume.secret.secretName} has no key ${item.key}`);
        writeFileSync(path.join(dir, item.path), data[item.key]!, { mode: 0o644 });
      }
    } else if (!volume.emptyDir) {
      throw new Error(`volume ${volume.name}: only emptyDir and secret volumes are rehearsed`);
    }
    // fsGroup: the kubelet makes the volumes the pod's group's.
    if (user) execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, dir]);
  }

  const ports = new Map<number, number>();
  const containers = [...(spec.initContainers ?? []), ...spec.containers];
  for (const c of containers) for (const p of c.ports ?? []) ports.set(p.containerPort, await freePort());
  const portHere = async (port: number) => {
    if (!ports.has(port)) ports.set(port, await freePort());
    return ports.get(port)!;
  };
  // Addresses in args and env (the pod's loopback or any-address) on this machine's free ports.
  const localize = async (value: string, hostPath: (p: string) => string) => {
    const address = ADDRESS.exec(value);
    if (address) return `127.0.0.1:${await portHere(Number(address[2]))}`;
    return value.startsWith('/') ? hostPath(value) : value;
  };
  const labels: Record<string, string> = {
    ...job.spec.template.metadata?.labels,
    'batch.kubernetes.io/job-name': options.jobName,
  };

  async function plan(c: Container): Promise<PlannedContainer> {
    const mounts = [...(c.volumeMounts ?? [])].sort((a, b) => b.mountPath.length - a.mountPath.length);
    const hostPath = (manifestPath: string) => {
      const mount = mounts.find(
        (m) => manifestPath === m.mountPath || manifestPath.startsWith(`${m.mountPath}/`),
      );
      if (!mount) return manifestPath;
      return path.join(volumes[mount.name]!, manifestPath.slice(mount.mountPath.length));
    };
    const env: Record<string, string> = {};
    for (const from of c.envFrom ?? []) {
      const ref = from.configMapRef ?? from.secretRef!;
      const data = from.configMapRef ? configMaps.get(ref.name) : options.secrets[ref.name];
      if (!data && !ref.optional) throw new Error(`${c.name}: envFrom ${ref.name} does not exist`);
      Object.assign(env, data);
    }
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else {
        const field = /^metadata\.labels\['(.+)'\]$/.exec(e.valueFrom?.fieldRef?.fieldPath ?? '');
        if (!field || labels[field[1]!] === undefined)
          throw new Error(
            `${c.name}: env ${e.name}: only values and metadata.labels fieldRefs are rehearsed`,
          );
        env[e.name] = labels[field[1]!]!;
      }
    }
    for (const [k, v] of Object.entries(env)) env[k] = await localize(v, hostPath);
    Object.assign(env, options.envOverrides);
    const args: string[] = [];
    for (const a of c.args ?? []) args.push(await localize(a, hostPath));
    for (const [name, value] of Object.entries(options.argOverrides ?? {})) {
      const at = args.indexOf(name);
      if (at >= 0) args[at + 1] = value;
    }
    return {
      spec: c,
      args,
      env,
      hostPath,
      probeTarget(probe) {
        const port = probe.grpc?.port ?? probe.httpGet!.port;
        const number = typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort;
        if (number === undefined || !ports.has(number))
          throw new Error(`${c.name}: a probe targets port ${port}, which the container does not declare`);
        return {
          port: ports.get(number)!,
          ...(probe.grpc && { grpcService: probe.grpc.service ?? '' }),
          ...(probe.httpGet && { httpPath: probe.httpGet.path }),
        };
      },
    };
  }

  const sidecarSpec = spec.initContainers?.find((c) => c.restartPolicy === 'Always');
  if (!sidecarSpec)
    throw new Error('deploy/base: no native sidecar (init container with restartPolicy: Always)');
  const sidecar = await plan(sidecarSpec);
  const trainer = await plan(spec.containers[0]!);
  const image = imageConfig();
  // A container starts with only what the image and the manifest give it (and a PATH).
  const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const spawnOptions = (workingDir: string, env: Record<string, string>) => ({
    cwd: workingDir,
    env: { ...baseEnv, ...env },
    ...(user && { uid: user.uid, gid: user.gid }),
  });

  return {
    spec,
    sidecar,
    trainer,
    jobName: options.jobName,
    graceSeconds: spec.terminationGracePeriodSeconds ?? 30,
    volumes,
    user,
    startSidecar() {
      // ENTRYPOINT [node, ...flags, /app/.../dist/bundle/main.js]: the same Node flags, but the source
      // entry, which the pod's non-root user is checked to read above (image.spec runs the bundle).
      const [, ...rest] = image.entrypoint;
      const nodeFlags = rest.filter((a) => a.startsWith('--'));
      const imageEnv: Record<string, string> = {};
      for (const [k, v] of Object.entries(image.env))
        imageEnv[k] = v.startsWith('/') ? sidecar.hostPath(v) : v;
      return spawnLogged(
        process.execPath,
        [...nodeFlags, '--conditions=@training-callbacks/source', SIDECAR_MAIN, ...sidecar.args],
        spawnOptions(sidecar.hostPath(image.workingDir), { ...imageEnv, ...sidecar.env }),
      );
    },
    startTrainer(command) {
      const [file, ...args] = command;
      return spawnLogged(file!, args, spawnOptions(root, trainer.env));
    },
    async [Symbol.asyncDispose]() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** What a probe of the kubelet saw. */
export interface ProbeRecord {
  readonly ok: boolean;
  readonly at: number;
  readonly detail: string;
}

/** One probe as the kubelet runs it: gRPC health (SERVING) or HTTP GET (200–399), within timeoutSeconds. */
export async function probeOnce(container: PlannedContainer, probe: Probe): Promise<ProbeRecord> {
  const target = container.probeTarget(probe);
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  const at = Date.now();
  try {
    if (target.grpcService !== undefined) {
      const health = healthOf(`127.0.0.1:${target.port}`);
      try {
        const status = await health.status(target.grpcService, timeoutMs);
        return { ok: status === 'SERVING', at, detail: status };
      } finally {
        health.close();
      }
    }
    const response = await fetch(`http://127.0.0.1:${target.port}${target.httpPath}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await response.text();
    return {
      ok: response.status >= 200 && response.status < 400,
      at,
      detail: `${response.status} ${body.trim()}`,
    };
  } catch (error) {
    return { ok: false, at, detail: (error as Error).message };
  }
}

/**
 * The startup probe: every periodSeconds until it succeeds; throws after failureThreshold failures, or
 * at once with its output when the container's `process` exits meanwhile.
 */
export async function waitForStartup(
  container: PlannedContainer,
  probe: Probe,
  process: LoggedProcess,
): Promise<number> {
  const started = Date.now();
  const threshold = probe.failureThreshold ?? 3;
  let last: ProbeRecord | undefined;
  let exited: number | string | undefined;
  void process.exited.then((code) => {
    exited = code;
  });
  const failed = (why: string) =>
    new Error(`${container.spec.name}: ${why}; its output:\n${process.output.join('\n')}`);
  await sleep((probe.initialDelaySeconds ?? 0) * 1000);
  for (let failures = 0; failures < threshold; failures++) {
    last = await probeOnce(container, probe);
    if (last.ok) return Date.now() - started;
    await sleep((probe.periodSeconds ?? 10) * 1000, () => exited !== undefined);
    if (exited !== undefined) throw failed(`exited (${exited}) before its startup probe passed`);
  }
  throw failed(
    `the startup probe failed ${threshold} times (last: ${last?.detail}); the kubelet would kill the container`,
  );
}

/**
 * A readiness or liveness probe running in the background every periodSeconds; `stop()` returns what
 * it saw, and `tripped` is the first run of failureThreshold consecutive failures (for liveness: the
 * kubelet would have restarted the container).
 */
export function runProbe(container: PlannedContainer, probe: Probe) {
  const records: ProbeRecord[] = [];
  let running = true;
  let consecutive = 0;
  let tripped: ProbeRecord[] | undefined;
  const loop = (async () => {
    await sleep((probe.initialDelaySeconds ?? 0) * 1000);
    while (running) {
      const record = await probeOnce(container, probe);
      if (!running) break;
      records.push(record);
      consecutive = record.ok ? 0 : consecutive + 1;
      if (consecutive >= (probe.failureThreshold ?? 3) && !tripped) tripped = records.slice(-consecutive);
      await sleep((probe.periodSeconds ?? 10) * 1000, () => !running);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { records, tripped };
    },
  };
}

/** Sleeps `ms`, waking early (checked every 50 ms) once `cancelled()` says so. */
async function sleep(ms: number, cancelled: () => boolean = () => false): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until && !cancelled())
    await new Promise((r) => setTimeout(r, Math.min(50, until - Date.now())));
}

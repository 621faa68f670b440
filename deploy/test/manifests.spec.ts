// The manifests, offline: every object validates against the Kubernetes API schemas (kubernetes-models),
// the pod is wired the way the sidecar needs it (native sidecar, probes on the ports its flags open,
// the trainer pointed at its gRPC address), and the sidecar's flags and environment are ones it accepts.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '@training-callbacks/sidecar';
import { Job } from 'kubernetes-models/batch/v1';
import { ConfigMap, type IContainer, type IProbe, Secret } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const DEPLOY = path.resolve(import.meta.dirname, '..');
const MODELS = { Job, ConfigMap, Secret } as const;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory())
      return entry.name === 'node_modules' || entry.name === 'test' ? [] : yamlFiles(full);
    return /\.ya?ml$/.test(entry.name) ? [full] : [];
  });
}

function documents(file: string): Array<Record<string, unknown>> {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    return doc.toJS() as Record<string, unknown>;
  });
}

function objectsOfBase() {
  const base = path.join(DEPLOY, 'base');
  const kustomization = documents(path.join(base, 'kustomization.yaml'))[0] as { resources: string[] };
  return kustomization.resources.flatMap((resource) => documents(path.join(base, resource)));
}

/** Validates one object with the model class of its kind; throws the schema's complaint. */
function validate(object: Record<string, unknown>) {
  const Model = MODELS[object.kind as keyof typeof MODELS];
  if (!Model) throw new Error(`no schema model for kind ${String(object.kind)}: add it to MODELS`);
  const model = new (Model as new (data: unknown) => { validate(): void })(object);
  model.validate();
  return model;
}

const job = () => objectsOfBase().find((o) => o.kind === 'Job') as unknown as Job;
const sidecarOf = (j: Job) =>
  j.spec!.template.spec!.initContainers!.find((c) => c.name === 'training-callbacks')!;
const trainerOf = (j: Job) => j.spec!.template.spec!.containers.find((c) => c.name === 'trainer')!;
const flag = (container: IContainer, name: string) => {
  const args = container.args ?? [];
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

describe('the manifests under deploy/', () => {
  it('validate against the Kubernetes API schemas, every YAML file and document', () => {
    const files = yamlFiles(DEPLOY).filter((f) => !f.endsWith('kustomization.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files)
      for (const object of documents(file)) expect(() => validate(object), file).not.toThrow();
  });

  it('are checked for real: a wrong type or a missing required field is refused', () => {
    const broken = structuredClone(job()) as unknown as {
      spec: { template: { spec: Record<string, unknown> } };
    };
    broken.spec.template.spec.shareProcessNamespace = 'yes';
    expect(() => validate(broken as never)).toThrow(/shareProcessNamespace/);
    const noImage = structuredClone(job()) as unknown as Job;
    delete (sidecarOf(noImage) as Partial<IContainer>).name;
    expect(() => validate(noImage as never)).toThrow(/name/);
  });

  it('run the sidecar as a native sidecar with startup, readiness and liveness probes on its own ports', () => {
    const j = job();
    const pod = j.spec!.template.spec!;
    const sidecar = sidecarOf(j);
    expect(sidecar.restartPolicy).toBe('Always');
    expect(pod.shareProcessNamespace).toBe(true);
    expect(pod.restartPolicy).toBe('Never');
    const health = portOf(flag(sidecar, '--health-listen')!);
    const http = portOf(flag(sidecar, '--http')!);
    const port = (probe: IProbe | undefined) => {
      const p = probe?.grpc?.port ?? probe?.httpGet?.port;
      return typeof p === 'string' ? sidecar.ports!.find((cp) => cp.name === p)!.containerPort : p;
    };
    expect(sidecar.startupProbe?.grpc).toEqual({ port: health, service: 'readiness' });
    expect(sidecar.livenessProbe?.grpc).toEqual({ port: health, service: 'liveness' });
    expect(sidecar.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(port(sidecar.readinessProbe)).toBe(http);
    // Long enough for a first start that migrates the database.
    const startup = sidecar.startupProbe!;
    expect((startup.periodSeconds ?? 10) * (startup.failureThreshold ?? 3)).toBeGreaterThanOrEqual(30);
  });

  it('give the sidecar flags and environment it accepts, with its drain inside the grace period', () => {
    const j = job();
    const sidecar = sidecarOf(j);
    const configMap = objectsOfBase().find((o) => o.kind === 'ConfigMap') as unknown as ConfigMap;
    expect(sidecar.envFrom?.map((e) => e.configMapRef?.name ?? e.secretRef?.name)).toContain(
      configMap.metadata!.name,
    );
    const config = loadConfig(sidecar.args!, { ...configMap.data })!;
    expect(config).toMatchObject({
      listen: '127.0.0.1:50051',
      http: '0.0.0.0:50052',
      healthListen: '0.0.0.0:50053',
      dbPath: '/data/training-callbacks.sqlite',
      artifactRoots: ['/shared'],
      authTokenFile: '/etc/training-callbacks/auth/tokens',
      logFormat: 'json',
    });
    expect(config.mlflow?.trackingUri).toBe(configMap.data!.MLFLOW_TRACKING_URI);
    const grace = j.spec!.template.spec!.terminationGracePeriodSeconds ?? 30;
    expect(config.shutdownDrainMs).toBeLessThan(grace * 1000);
  });

  it('point the trainer at the sidecar over loopback, with its token, and share the artifact volume', () => {
    const j = job();
    const sidecar = sidecarOf(j);
    const trainer = trainerOf(j);
    const env = Object.fromEntries((trainer.env ?? []).map((e) => [e.name, e.value]));
    expect(env.TRAINING_CALLBACKS_ADDRESS).toBe(flag(sidecar, '--listen'));
    const mounts = (c: IContainer) => Object.fromEntries((c.volumeMounts ?? []).map((m) => [m.name, m]));
    const root = flag(sidecar, '--artifact-root')!;
    expect(mounts(sidecar).shared?.mountPath).toBe(root);
    expect(mounts(trainer).shared?.mountPath).toBe(root);
    expect(path.dirname(flag(sidecar, '--db')!)).toBe(mounts(sidecar).data?.mountPath);
    const tokenFile = env.TRAINING_CALLBACKS_TOKEN_FILE!;
    expect(mounts(trainer)['trainer-auth']?.mountPath).toBe(path.dirname(tokenFile));
    expect(mounts(sidecar)['sidecar-auth']?.mountPath).toBe(
      path.dirname(flag(sidecar, '--auth-token-file')!),
    );
    const volumes = Object.fromEntries(j.spec!.template.spec!.volumes!.map((v) => [v.name, v]));
    expect(volumes['trainer-auth']?.secret?.items).toEqual([
      { key: 'trainer-token', path: path.basename(tokenFile) },
    ]);
  });

  it('run non-root with a read-only root file system, requests and limits set', () => {
    const j = job();
    const pod = j.spec!.template.spec!;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    const sidecar = sidecarOf(j);
    expect(sidecar.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(sidecar.resources?.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    expect(sidecar.resources?.limits).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    for (const c of [sidecar, trainerOf(j)]) expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
  });
});

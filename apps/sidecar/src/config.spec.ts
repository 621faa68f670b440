import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, HELP, isLoopbackListen, loadConfig } from './config.ts';
import { EXIT_CODES } from './exit-codes.ts';

describe('loadConfig', () => {
  it('defaults to loopback and a SQLite file under ./data', () => {
    const config = loadConfig([], {})!;
    expect(config.listen).toBe('127.0.0.1:50051');
    expect(config.dbPath).toBe(path.resolve('data/training-callbacks.sqlite'));
    expect(config.artifactStore).toBe(path.resolve('data/artifacts'));
    expect(config.artifactRoots).toEqual([]);
    expect(config.durability).toBe('normal');
    expect(config.http).toBe('127.0.0.1:50052');
  });

  it("takes --shutdown-drain in seconds (default 25, under Kubernetes' 30 s grace), 0 turns the drain off", () => {
    expect(loadConfig([], {})!.shutdownDrainMs).toBe(25_000);
    expect(loadConfig([], { TRAINING_CALLBACKS_SHUTDOWN_DRAIN: '12.5' })!.shutdownDrainMs).toBe(12_500);
    expect(loadConfig(['--shutdown-drain', '0'], {})!.shutdownDrainMs).toBe(0);
    expect(() => loadConfig(['--shutdown-drain=-1'], {})).toThrow(
      /--shutdown-drain must be a number of seconds ≥ 0/,
    );
  });

  it('takes --http from the flag or TRAINING_CALLBACKS_HTTP, "off" turns it off', () => {
    expect(
      loadConfig([], { TRAINING_CALLBACKS_HTTP: '0.0.0.0:9102', TRAINING_CALLBACKS_INSECURE_LISTEN: '1' })!
        .http,
    ).toBe('0.0.0.0:9102');
    expect(loadConfig(['--http', '[::1]:0'], { TRAINING_CALLBACKS_HTTP: 'off' })!.http).toBe('[::1]:0');
    expect(loadConfig([], { TRAINING_CALLBACKS_HTTP: 'off' })!.http).toBeUndefined();
    expect(() => loadConfig(['--http', '9102'], {})).toThrow(/--http must be host:port or "off"/);
    // A PostgreSQL URL is the shared store, kept as given (not resolved as a file name)…
    const pg = loadConfig(
      ['--db', 'postgres://tc:secret@db:5432/tc?sslmode=require', '--db-pool-size', '4'],
      {},
    )!;
    expect([pg.dbDialect, pg.dbPath, pg.dbPoolSize]).toEqual([
      'postgresql',
      'postgres://tc:secret@db:5432/tc?sslmode=require',
      4,
    ]);
    expect(pg.artifactStore).toBe(path.resolve('data', 'artifacts'));
    expect(loadConfig([], { TRAINING_CALLBACKS_DB: 'postgresql://db/tc' })!.dbDialect).toBe('postgresql');
    expect(() => loadConfig(['--db', 'postgres://db/tc', '--db-pool-size', '1'], {})).toThrow(
      /--db-pool-size must be/,
    );
    // …another URL is refused, not created as a directory named `mysql:`; the password stays out of the message.
    expect(() => loadConfig(['--db', 'mysql://tc:secret@db:3306/tc'], {})).toThrow(
      /^--db is a mysql:\/\/ URL; the sidecar stores in an SQLite file or in PostgreSQL/,
    );
    expect(() => loadConfig(['--db', 'mysql://tc:secret@db:3306/tc'], {})).not.toThrow(/secret/);
    expect(() => loadConfig(['--http', 'x:70000'], {})).toThrow(/port out of range/);
  });

  it('reads the environment, and flags win over it', () => {
    const env = {
      TRAINING_CALLBACKS_LISTEN: 'unix:/run/tc.sock',
      TRAINING_CALLBACKS_DB: '/var/lib/tc/db.sqlite',
      TRAINING_CALLBACKS_ARTIFACT_ROOTS: '/shared/a:/shared/b',
      TRAINING_CALLBACKS_DURABILITY: 'full',
    };
    expect(loadConfig([], env)).toMatchObject({
      listen: 'unix:/run/tc.sock',
      dbPath: '/var/lib/tc/db.sqlite',
      artifactStore: '/var/lib/tc/artifacts',
      artifactRoots: ['/shared/a', '/shared/b'],
      durability: 'full',
    });
    expect(
      loadConfig(['--listen', '127.0.0.1:0', '--artifact-root', '/x', '--artifact-root', '/y'], env),
    ).toMatchObject({
      listen: '127.0.0.1:0',
      artifactRoots: ['/x', '/y'],
    });
  });

  it('refuses a database inside the artifact store, where a job id and an artifact path could name it', () => {
    expect(() => loadConfig(['--db', '/data/db/tc.sqlite', '--artifact-store', '/data'], {})).toThrow(
      /--db \/data\/db\/tc.sqlite lies inside --artifact-store \/data/,
    );
    // Next to it (the database's own directory, written only two levels down) is fine.
    expect(loadConfig(['--db', '/data/tc.sqlite', '--artifact-store', '/data'], {})?.artifactStore).toBe(
      '/data',
    );
  });

  it('returns undefined for --help, and the help lists every flag', () => {
    expect(loadConfig(['--help'], {})).toBeUndefined();
    expect(loadConfig(['-h'], {})).toBeUndefined();
    for (const flag of [
      '--listen',
      '--http',
      '--shutdown-drain',
      '--log-format',
      '--log-level',
      '--db',
      '--artifact-store',
      '--artifact-root',
      '--durability',
      '--max-message-bytes',
      '--quiet',
    ]) {
      expect(HELP).toContain(flag);
    }
  });

  it('takes the trainer lease from --trainer-lease or its variable (60 s by default), at least 1 s', () => {
    expect(loadConfig([], {})!.trainerLeaseMs).toBe(60_000);
    expect(loadConfig(['--trainer-lease', '3'], {})!.trainerLeaseMs).toBe(3000);
    expect(loadConfig([], { TRAINING_CALLBACKS_TRAINER_LEASE: '120' })!.trainerLeaseMs).toBe(120_000);
    expect(() => loadConfig(['--trainer-lease', '0.5'], {})).toThrow(
      /--trainer-lease must be a number of seconds ≥ 1/,
    );
    expect(HELP).toContain('--trainer-lease');
    expect(HELP).toContain('TRAINING_CALLBACKS_TRAINER_LEASE');
  });

  it('refuses unknown flags and bad values with a message saying what is wrong', () => {
    expect(() => loadConfig(['--lisen', 'x'], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--durability', 'maybe'], {})).toThrow(
      /--durability must be "normal" or "full"/,
    );
    expect(() => loadConfig(['--max-message-bytes', '12'], {})).toThrow(/≥ 65536/);
  });

  it("mirrors to MLflow only when MLFLOW_TRACKING_URI is set, with MLflow's own variables", () => {
    const off = loadConfig([], {})!;
    expect(off.mlflow).toBeUndefined();
    expect(off.mlflowRetryHorizonMs).toBe(7 * 24 * 3600 * 1000);
    expect(off.mlflowMaxBackoffMs).toBe(300_000);
    expect(off.mlflowRequestConcurrency).toBe(2);
    expect(off.mlflowClaimLeaseMs).toBe(30_000);
    const on = loadConfig(
      ['--mlflow-max-backoff', '2', '--mlflow-concurrency', '1', '--mlflow-claim-lease', '5'],
      {
        MLFLOW_TRACKING_URI: 'http://u:p@mlflow.internal:5000/',
        MLFLOW_HTTP_REQUEST_TIMEOUT: '30',
        TRAINING_CALLBACKS_MLFLOW_RETRY_HORIZON: '3600',
      },
    )!;
    expect(on.mlflow).toMatchObject({
      trackingUri: 'http://mlflow.internal:5000',
      auth: { kind: 'basic', username: 'u', password: 'p' },
      requestTimeoutMs: 30_000,
    });
    expect(on.mlflowRetryHorizonMs).toBe(3_600_000);
    expect(on.mlflowMaxBackoffMs).toBe(2000);
    expect(on.mlflowRequestConcurrency).toBe(1);
    expect(on.mlflowClaimLeaseMs).toBe(5000);
    expect(() => loadConfig(['--mlflow-claim-lease', '0'], {})).toThrow(/--mlflow-claim-lease must be/);
    expect(loadConfig([], { TRAINING_CALLBACKS_MLFLOW_CONCURRENCY: '4' })!.mlflowRequestConcurrency).toBe(4);
    for (const bad of ['0', '1.5', '17', 'many']) {
      expect(() => loadConfig(['--mlflow-concurrency', bad], {})).toThrow(
        `--mlflow-concurrency must be an integer from 1 to 16, got "${bad}"`,
      );
    }
    expect(() => loadConfig([], { MLFLOW_TRACKING_URI: 'file:///tmp/mlruns' })).toThrow(ConfigError);
    expect(() => loadConfig(['--mlflow-retry-horizon', 'soon'], {})).toThrow(/seconds/);
    for (const name of [
      'MLFLOW_TRACKING_URI',
      'MLFLOW_TRACKING_TOKEN',
      '--mlflow-retry-horizon',
      '--mlflow-concurrency',
      '--mlflow-claim-lease',
    ]) {
      expect(HELP).toContain(name);
    }
  });
});

describe('security flags', () => {
  it('reads TLS, token, health-port and insecure-listen settings from flags or environment', () => {
    const env = {
      TRAINING_CALLBACKS_TLS_CERT: '/etc/tc/tls.crt',
      TRAINING_CALLBACKS_TLS_KEY: '/etc/tc/tls.key',
      TRAINING_CALLBACKS_TLS_CLIENT_CA: '/etc/tc/ca.crt',
      TRAINING_CALLBACKS_AUTH_TOKEN_FILE: '/etc/tc/tokens',
      TRAINING_CALLBACKS_HEALTH_LISTEN: '0.0.0.0:50053',
    };
    expect(loadConfig(['--listen', '0.0.0.0:50051'], env)).toMatchObject({
      tls: { certFile: '/etc/tc/tls.crt', keyFile: '/etc/tc/tls.key', clientCaFile: '/etc/tc/ca.crt' },
      authTokenFile: '/etc/tc/tokens',
      healthListen: '0.0.0.0:50053',
      insecureListen: false,
    });
    const plain = loadConfig([], {})!;
    expect(plain.tls).toBeUndefined();
    expect(plain.authTokenFile).toBeUndefined();
    expect(plain.healthListen).toBeUndefined();
    expect(loadConfig(['--tls-cert', 'c.pem', '--tls-key', 'k.pem'], {})!.tls).toEqual({
      certFile: path.resolve('c.pem'),
      keyFile: path.resolve('k.pem'),
    });
    for (const name of [
      '--tls-cert',
      '--tls-key',
      '--tls-client-ca',
      '--auth-token-file',
      '--health-listen',
    ]) {
      expect(HELP).toContain(name);
    }
  });

  it('refuses half a TLS configuration', () => {
    expect(() => loadConfig(['--tls-cert', 'c.pem'], {})).toThrow(/--tls-cert was given without --tls-key/);
    expect(() => loadConfig([], { TRAINING_CALLBACKS_TLS_KEY: 'k.pem' })).toThrow(
      /--tls-key was given without --tls-cert/,
    );
    expect(() => loadConfig(['--tls-client-ca', 'ca.pem'], {})).toThrow(/needs --tls-cert and --tls-key/);
  });

  it('refuses to listen beyond loopback with neither TLS nor tokens unless told --insecure-listen', () => {
    for (const listen of ['0.0.0.0:50051', '[::]:50051', '10.1.2.3:50051', 'sidecar.internal:50051']) {
      expect(() => loadConfig(['--listen', listen], {})).toThrow(/refusing to listen .*--insecure-listen/);
      expect(loadConfig(['--listen', listen, '--insecure-listen'], {})!.insecureListen).toBe(true);
      expect(loadConfig(['--listen', listen], { TRAINING_CALLBACKS_INSECURE_LISTEN: '1' })).toBeDefined();
      expect(loadConfig(['--listen', listen, '--auth-token-file', 't'], {})).toBeDefined();
      expect(loadConfig(['--listen', listen, '--tls-cert', 'c', '--tls-key', 'k'], {})).toBeDefined();
    }
    for (const listen of [
      '127.0.0.1:0',
      '127.0.0.2:50051',
      'localhost:50051',
      '[::1]:50051',
      'unix:/tmp/x',
    ]) {
      expect(isLoopbackListen(listen)).toBe(true);
    }
    // The HTTP listener too.
    expect(() => loadConfig(['--http', '0.0.0.0:50052'], {})).toThrow(
      /refusing to listen on 0\.0\.0\.0:50052/,
    );
    expect(loadConfig(['--http', '0.0.0.0:50052', '--auth-token-file', 't'], {})).toBeDefined();
    expect(loadConfig(['--listen', '127.0.0.1:1', '--http', 'off'], {})).toBeDefined();
    expect(isLoopbackListen('0.0.0.0:1')).toBe(false);
    expect(isLoopbackListen('127.evil.example:1')).toBe(false);
  });
});

describe('exit codes', () => {
  it('gives every cause its own code, and --help lists each', () => {
    const codes = Object.values(EXIT_CODES).map((entry) => entry.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const { code, meaning } of Object.values(EXIT_CODES)) {
      expect(HELP).toMatch(new RegExp(`^ +${code} +${meaning.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    }
  });
});

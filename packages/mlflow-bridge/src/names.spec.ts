import { describe, expect, it } from 'vitest';
import { mlflowConfigFromEnv } from './config.ts';
import { httpError, isRetryableStatus, parseRetryAfter } from './errors.ts';
import { MetricKeyMap, mlflowJsonReplacer, sanitizeMetricKey } from './names.ts';

describe('sanitizeMetricKey', () => {
  it.each([
    ['metrics/mAP50(B)', 'metrics/mAP50B'],
    ['metrics/mAP50-95(M)', 'metrics/mAP50-95M'],
    ['train/box_loss', 'train/box_loss'],
    ['lr/pg0', 'lr/pg0'],
    ['acc@1', 'acc_1'],
    ['a:b', 'a_b'],
    ['/abs//path/', 'abs/path'],
    ['a/./b/../c', 'a/_/b/__/c'],
    ['top 5 acc', 'top 5 acc'],
    ['ünïcode', '_n_code'],
    ['()', '_'],
    ['', '_'],
  ])('%j → %j', (input, out) => {
    expect(sanitizeMetricKey(input)).toBe(out);
  });

  it('cuts long names to 250 characters with a hash, deterministically', () => {
    const long = 'x'.repeat(400);
    const a = sanitizeMetricKey(long);
    expect(a).toHaveLength(250);
    expect(a).toBe(sanitizeMetricKey(long));
    expect(a).not.toBe(sanitizeMetricKey(`${'x'.repeat(399)}y`));
  });
});

describe('MetricKeyMap', () => {
  it('keeps the mapping and gives colliding names a suffix', () => {
    const m = new MetricKeyMap();
    expect(m.keyFor('mAP50(B)')).toBe('mAP50B');
    expect(m.keyFor('mAP50B')).toBe('mAP50B_2');
    expect(m.keyFor('mAP50[B]')).toBe('mAP50_B_');
    expect(m.keyFor('mAP50(B)')).toBe('mAP50B');
    expect(m.collisions).toEqual([
      { original: 'mAP50B', wanted: 'mAP50B', takenBy: 'mAP50(B)', assigned: 'mAP50B_2' },
    ]);
    expect(m.takeAdded()).toHaveLength(3);
    expect(m.takeAdded()).toHaveLength(0);
    // Restored from its JSON, it answers the same and keeps avoiding taken keys.
    const again = new MetricKeyMap(JSON.parse(JSON.stringify(m)) as Record<string, string>);
    expect(again.keyFor('mAP50B')).toBe('mAP50B_2');
    expect(again.keyFor('mAP50B_2')).toBe('mAP50B_2_2');
    expect(again.originalOf('mAP50B')).toBe('mAP50(B)');
  });
});

describe('non-finite numbers', () => {
  it('travel in requests as MLflow strings, never as null (the codec: the store number-codec spec)', () => {
    expect(JSON.stringify({ v: [Number.NaN, -Infinity, 2, -0] }, mlflowJsonReplacer)).toBe(
      '{"v":["NaN","-Infinity",2,0]}',
    );
  });
});

describe('mlflowConfigFromEnv', () => {
  it('is undefined without MLFLOW_TRACKING_URI', () => {
    expect(mlflowConfigFromEnv({})).toBeUndefined();
    expect(mlflowConfigFromEnv({ MLFLOW_TRACKING_URI: ' ' })).toBeUndefined();
  });
  it('reads auth (Basic wins over the token, as in the Python client) and TLS variables', () => {
    expect(
      mlflowConfigFromEnv({
        MLFLOW_TRACKING_URI: 'https://mlflow.example:5000/prefix/',
        MLFLOW_TRACKING_USERNAME: 'u',
        MLFLOW_TRACKING_PASSWORD: 'p',
        MLFLOW_TRACKING_TOKEN: 't',
        MLFLOW_TRACKING_SERVER_CERT_PATH: '/ca.pem',
        MLFLOW_TRACKING_CLIENT_CERT_PATH: '/client.pem',
        MLFLOW_HTTP_REQUEST_TIMEOUT: '30',
      }),
    ).toEqual({
      trackingUri: 'https://mlflow.example:5000/prefix',
      auth: { kind: 'basic', username: 'u', password: 'p' },
      tls: { caCertPath: '/ca.pem', clientCertPath: '/client.pem' },
      requestTimeoutMs: 30_000,
    });
    expect(
      mlflowConfigFromEnv({ MLFLOW_TRACKING_URI: 'http://h', MLFLOW_TRACKING_TOKEN: 't' })?.auth,
    ).toEqual({
      kind: 'bearer',
      token: 't',
    });
    expect(mlflowConfigFromEnv({ MLFLOW_TRACKING_URI: 'http://a:b@h:1' })).toMatchObject({
      trackingUri: 'http://h:1',
      auth: { kind: 'basic', username: 'a', password: 'b' },
    });
    expect(
      mlflowConfigFromEnv({ MLFLOW_TRACKING_URI: 'http://h', MLFLOW_TRACKING_INSECURE_TLS: 'true' })?.tls,
    ).toEqual({
      insecure: true,
    });
  });
  it('refuses what it cannot use', () => {
    expect(() => mlflowConfigFromEnv({ MLFLOW_TRACKING_URI: 'file:///tmp/mlruns' })).toThrow(/only http/);
    expect(() => mlflowConfigFromEnv({ MLFLOW_TRACKING_URI: 'databricks' })).toThrow(/not a URL/);
    expect(() =>
      mlflowConfigFromEnv({
        MLFLOW_TRACKING_URI: 'https://h',
        MLFLOW_TRACKING_INSECURE_TLS: '1',
        MLFLOW_TRACKING_SERVER_CERT_PATH: '/ca',
      }),
    ).toThrow(/cannot both/);
  });
});

describe('error classification', () => {
  it('retries 408, 429 and 5xx but 501', () => {
    expect([408, 429, 500, 502, 503, 504].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 409, 413, 501].some(isRetryableStatus)).toBe(false);
  });
  it('keeps error_code and message, reads Retry-After', () => {
    const e = httpError(
      'POST',
      'runs/log-batch',
      429,
      '{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}',
      '3',
    );
    expect(e).toMatchObject({
      retryable: true,
      status: 429,
      errorCode: 'REQUEST_LIMIT_EXCEEDED',
      retryAfterMs: 3000,
    });
    expect(e.message).toContain('REQUEST_LIMIT_EXCEEDED: slow down');
    expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
  });
  it('treats known plain-text answers as configuration errors', () => {
    const e = httpError(
      'GET',
      'runs/get',
      403,
      'Invalid Host header - possible DNS rebinding attack detected',
      undefined,
    );
    expect(e).toMatchObject({ retryable: false, kind: 'config' });
    expect(e.message).toMatch(/--allowed-hosts/);
    const s = httpError(
      'PUT',
      'a',
      503,
      'Endpoint: /x disabled due to the mlflow server running with `--no-serve-artifacts`.',
      undefined,
    );
    expect(s).toMatchObject({ retryable: false, kind: 'config' });
    expect(httpError('GET', 'a', 502, '<html>Bad gateway</html>', undefined).retryable).toBe(true);
  });
});

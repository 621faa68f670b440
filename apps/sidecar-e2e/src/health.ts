// A grpc.health.v1 client for the tests, and a wait for a health status.
import { credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProto } from 'grpc-health-check';

interface HealthClient {
  check(
    req: { service: string },
    options: { deadline?: number },
    cb: (e: Error | null, r: { status: string }) => void,
  ): void;
  close(): void;
}

/** The health client of a sidecar; `status()` asks once, `waitFor()` polls until the status is `want`. */
export function healthOf(address: string) {
  const pkg = loadPackageDefinition(loadSync(healthProto, { enums: String })) as never as {
    grpc: { health: { v1: { Health: new (address: string, creds: unknown) => HealthClient } } };
  };
  const client = new pkg.grpc.health.v1.Health(address, credentials.createInsecure());
  /** One check of `service`; with `timeoutMs`, a deadline (a kubelet probe's timeoutSeconds). */
  const status = (service = '', timeoutMs?: number) =>
    new Promise<string>((resolve, reject) =>
      client.check(
        { service },
        timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs },
        (e, r) => (e ? reject(e) : resolve(r.status)),
      ),
    );
  return {
    status,
    /** Polls every 100 ms; returns how long it took, or throws after `timeoutMs` with the last status. */
    async waitFor(want: string, timeoutMs: number, service = ''): Promise<number> {
      const start = Date.now();
      let last = '';
      while (Date.now() - start < timeoutMs) {
        last = await status(service);
        if (last === want) return Date.now() - start;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`health stayed ${last} for ${timeoutMs} ms (waiting for ${want})`);
    },
    close: () => client.close(),
  };
}

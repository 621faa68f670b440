// A call that must be refused: its gRPC status, its message, and a database left exactly as it was.
import { RpcError, Status, type StatusCode } from '@training-callbacks/grpc-adapter';
import { expect } from 'vitest';
import { snapshotDatabase } from './database.ts';

/** Runs `call`, which must fail with `code` and a message matching `message`, writing nothing to the database `dbPath` (a SQLite file or a `postgres://` URL). */
export async function expectRefused(
  dbPath: string,
  call: () => Promise<unknown>,
  code: StatusCode,
  message: RegExp,
): Promise<RpcError> {
  const before = await snapshotDatabase(dbPath);
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the call should have been refused').toBeInstanceOf(RpcError);
  expect(Status[(error as RpcError).code], (error as RpcError).message).toBe(Status[code]);
  expect((error as RpcError).message).toMatch(message);
  expect(await snapshotDatabase(dbPath), 'a refused call must not change the database').toBe(before);
  return error as RpcError;
}

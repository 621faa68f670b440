// The gRPC side of authentication: a grpc-js server interceptor that checks the bearer token of each
// call against the token file before the call reaches a handler. What a method needs comes from the
// contract: methods marked `idempotency_level = NO_SIDE_EFFECTS` in proto/ are reads.
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { MethodOptions_IdempotencyLevel } from '@bufbuild/protobuf/wkt';
import {
  type Metadata,
  ResponderBuilder,
  ServerInterceptingCall,
  type ServerInterceptor,
  ServerListenerBuilder,
  status,
} from '@grpc/grpc-js';
import { AUTHORIZATION_METADATA_KEY } from '@training-callbacks/proto';
import type { Access, TokenAuthenticator } from './auth.ts';

/** Health checks answer without a token: Kubernetes' gRPC probes cannot send one. */
const OPEN_SERVICES = ['/grpc.health.v1.Health/'];
/** Server reflection describes the public contract only; it needs a read token. */
const READ_SERVICES = ['/grpc.reflection.v1.ServerReflection/', '/grpc.reflection.v1alpha.ServerReflection/'];

/** What each method path ("/pkg.Service/Method") needs, from the services' descriptors. */
export function accessByPath(services: readonly GenService<GenServiceMethods>[]): Map<string, Access> {
  const map = new Map<string, Access>();
  for (const service of services) {
    for (const method of service.methods) {
      const read = method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
      map.set(`/${service.typeName}/${method.name}`, read ? 'read' : 'write');
    }
  }
  return map;
}

function accessOf(path: string, byPath: ReadonlyMap<string, Access>): Access | 'open' {
  if (OPEN_SERVICES.some((prefix) => path.startsWith(prefix))) return 'open';
  if (READ_SERVICES.some((prefix) => path.startsWith(prefix))) return 'read';
  // Anything not in the contract's table is treated as a write: a new method is protected by default.
  return byPath.get(path) ?? 'write';
}

function authorizationOf(metadata: Metadata): string | undefined {
  const value = metadata.get(AUTHORIZATION_METADATA_KEY)[0];
  return typeof value === 'string' ? value : value?.toString('utf8');
}

/**
 * A server interceptor refusing calls without a valid token (UNAUTHENTICATED) and writes with a
 * read-only token (PERMISSION_DENIED); the refused call never reaches its handler.
 */
export function tokenInterceptor(
  tokens: TokenAuthenticator,
  services: readonly GenService<GenServiceMethods>[],
): ServerInterceptor {
  const byPath = accessByPath(services);
  return (methodDescriptor, call) => {
    const access = accessOf(methodDescriptor.path, byPath);
    if (access === 'open') return new ServerInterceptingCall(call);
    const method = methodDescriptor.path.slice(methodDescriptor.path.lastIndexOf('/') + 1);
    const listener = new ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        const decision = tokens.authorize(authorizationOf(metadata), access, method);
        if (decision.ok) {
          next(metadata);
          return;
        }
        call.sendStatus({
          code: decision.reason === 'unauthenticated' ? status.UNAUTHENTICATED : status.PERMISSION_DENIED,
          details: decision.message,
        });
      })
      .build();
    const responder = new ResponderBuilder().withStart((next) => next(listener)).build();
    return new ServerInterceptingCall(call, responder);
  };
}

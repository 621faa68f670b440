// The HTTP side of TLS and authentication, for the sidecar's one HTTP listener (`--http`): an HTTPS
// server that follows certificate reloads, and the authorizer that checks bearer tokens (and, with
// `--tls-client-ca`, client certificates) on every non-public route. Public routes (/livez, /readyz)
// stay reachable for Kubernetes' HTTP probes, which send neither a token nor a client certificate.
import type { IncomingMessage, RequestListener, Server } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Access, TokenAuthenticator } from './auth.ts';
import type { TlsSource } from './tls.ts';

// Not `import … from 'node:https'`: the ES module facade of a built-in reads every export, and
// that loads Node's bundled undici (~8 MB of RSS); see http/listener.ts.
const https = process.getBuiltinModule('node:https');

/** What the HTTP listener asks: may this request use a route needing `access`? */
export type HttpAuthorization = { ok: true } | { ok: false; status: 401 | 403; message: string };

/**
 * An HTTPS server factory for the listener. With a client CA, a client certificate is requested but
 * not required at the handshake, so probes can reach the public routes; {@link httpAuthorizer}
 * requires a verified one on every other route.
 */
export function httpsServerFactory(tls: TlsSource): (handler: RequestListener) => Server {
  return (handler) => {
    const server = https.createServer(
      { ...tls.current(), ...(tls.mutual && { requestCert: true, rejectUnauthorized: false }) },
      handler,
    );
    const unsubscribe = tls.onChange((options) => server.setSecureContext(options));
    server.once('close', unsubscribe);
    return server;
  };
}

/** The authorizer for the HTTP listener's non-public routes. */
export function httpAuthorizer(options: {
  tokens?: TokenAuthenticator;
  tls?: TlsSource;
}): (request: IncomingMessage, access: Access | 'public') => HttpAuthorization {
  return (request, access) => {
    if (access === 'public') return { ok: true };
    if (options.tls?.mutual && !(request.socket as TLSSocket).authorized) {
      return {
        ok: false,
        status: 401,
        message:
          'this sidecar requires a client certificate signed by its --tls-client-ca for this path ' +
          `(${(request.socket as TLSSocket).authorizationError ?? 'none was sent'})`,
      };
    }
    if (!options.tokens) return { ok: true };
    const path = (request.url ?? '/').split('?', 1)[0] ?? '/';
    const decision = options.tokens.authorize(request.headers.authorization, access, path);
    if (decision.ok) return { ok: true };
    return {
      ok: false,
      status: decision.reason === 'unauthenticated' ? 401 : 403,
      message: decision.message,
    };
  };
}

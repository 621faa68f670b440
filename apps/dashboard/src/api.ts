// The page's one connection to the sidecar: the TrainingCallbacks service over the Connect protocol
// (@connectrpc/connect-web) on the same origin that served the page, from the same protobuf-es
// descriptors the sidecar and the clients use. A sidecar with --auth-token-file needs a token: the
// page asks for one once a call answers UNAUTHENTICATED and keeps it for the browser tab.
import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-web';
import {
  AUTHORIZATION_METADATA_KEY,
  AUTHORIZATION_SCHEME,
  TrainingCallbacks,
} from '@training-callbacks/proto';

const TOKEN_KEY = 'training-callbacks.token';

/** The token this tab sends (sessionStorage: gone when the tab closes). */
export function currentToken(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

export function setToken(token: string | undefined): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The `authorization` header value, when a token is set. */
export function authorizationHeader(): string | undefined {
  const token = currentToken();
  return token ? `${AUTHORIZATION_SCHEME} ${token}` : undefined;
}

const withToken: Interceptor = (next) => (request) => {
  const value = authorizationHeader();
  if (value) request.header.set(AUTHORIZATION_METADATA_KEY, value);
  return next(request);
};

export const api = createClient(
  TrainingCallbacks,
  createConnectTransport({
    baseUrl: window.location.origin,
    // Binary on the wire: int64 steps stay exact and 1 M-point pages stay small.
    useBinaryFormat: true,
    interceptors: [withToken],
  }),
);

/** True when `error` means "send a (better) token". */
export function needsToken(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return code === Code.Unauthenticated;
}

/** A one-line message for a failed call: the sidecar's own message, which says what to fix. */
export function describeError(error: unknown): string {
  if (error instanceof DOMException && error.name === 'AbortError') return 'cancelled';
  const e = ConnectError.from(error);
  return `${Code[e.code] ?? e.code}: ${e.rawMessage}`;
}

/** Every item of a paged list RPC (follow next_page_token until it is empty). */
export async function listAll<T>(
  page: (pageToken: string) => Promise<{ nextPageToken: string; items: T[] }>,
): Promise<T[]> {
  const all: T[] = [];
  let token = '';
  do {
    const { nextPageToken, items } = await page(token);
    all.push(...items);
    token = nextPageToken;
  } while (token !== '');
  return all;
}

/** The MLflow UI's address the sidecar mirrors to (from the page's meta tag), when it mirrors. */
export function mlflowUiUrl(): string | undefined {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="training-callbacks:mlflow-ui"]');
  return meta?.content || undefined;
}

/** The download URL of a stored artifact (the sidecar's /artifacts/ route). */
export function artifactUrl(jobId: string, artifactPath: string): string {
  return `/artifacts/${encodeURIComponent(jobId)}/${artifactPath.split('/').map(encodeURIComponent).join('/')}`;
}

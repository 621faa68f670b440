// Reading a list RPC to its end. Every list RPC pages (a page stays within the sidecar's message
// limit, so it may hold fewer items than asked for); these follow next_page_token until it is empty.

/** Every page of a list RPC, fetched one after the other. */
export async function* pages<Req extends { pageToken?: string }, Res extends { nextPageToken: string }>(
  call: (request: Req) => Promise<Res>,
  request: Req,
): AsyncGenerator<Res> {
  let pageToken = request.pageToken ?? '';
  do {
    const page = await call({ ...request, pageToken });
    yield page;
    pageToken = page.nextPageToken;
  } while (pageToken);
}

/**
 * Every item of a list RPC, page by page: e.g.
 * `for await (const epoch of listAll(client.listEpochs, { jobId }, (p) => p.epochs))` (the typed
 * client's methods need no binding).
 */
export async function* listAll<Req extends { pageToken?: string }, Res extends { nextPageToken: string }, T>(
  call: (request: Req) => Promise<Res>,
  request: Req,
  items: (page: Res) => readonly T[],
): AsyncGenerator<T> {
  for await (const page of pages(call, request)) yield* items(page);
}

/** Every item of a list RPC in one array (for lists that fit in memory). */
export async function collectAll<
  Req extends { pageToken?: string },
  Res extends { nextPageToken: string },
  T,
>(call: (request: Req) => Promise<Res>, request: Req, items: (page: Res) => readonly T[]): Promise<T[]> {
  const all: T[] = [];
  for await (const item of listAll(call, request, items)) all.push(item);
  return all;
}

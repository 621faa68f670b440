// The dashboard's entry point: the route decides the page; a token form appears when the sidecar
// answers UNAUTHENTICATED (a sidecar with --auth-token-file; a read token is enough).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { currentToken, setToken } from './api.ts';
import { Compare } from './pages/compare.tsx';
import { JobList } from './pages/job-list.tsx';
import { JobPage } from './pages/job-page.tsx';
import { Link, useRoute } from './router.tsx';
import { onTokenNeeded } from './session.tsx';
import './styles.css';

function TokenForm() {
  const [value, setValue] = useState('');
  return (
    <form
      class="token"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim());
        window.location.reload();
      }}
    >
      <p>
        This sidecar needs a token ({currentToken() ? 'the one given was refused' : 'none was given'}). Paste
        a read token from its <code>--auth-token-file</code>; it is kept for this tab only.
      </p>
      <input type="password" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
      <button type="submit">Use token</button>
    </form>
  );
}

function App() {
  const route = useRoute();
  const [tokenNeeded, setTokenNeeded] = useState(false);
  useEffect(() => onTokenNeeded(setTokenNeeded), []);
  return (
    <>
      <nav class="top">
        <Link href="/" class="brand">
          training-callbacks
        </Link>
      </nav>
      <main>
        {tokenNeeded && <TokenForm />}
        {route.page === 'list' && <JobList query={route.query} />}
        {route.page === 'job' && <JobPage jobId={route.jobId} />}
        {route.page === 'compare' && <Compare jobIds={route.jobIds} />}
        {route.page === 'unknown' && (
          <p class="error">
            No page at {route.path}. <Link href="/">Go to the job list.</Link>
          </p>
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);

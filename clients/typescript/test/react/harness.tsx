// The React entry in a page, for test/react.test.mjs: a provider whose children and whose
// own presence the test switches, with `window.harness` to drive it.
import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import { flushSync } from "react-dom";
import { createClient } from "../../dist/index.js";
import { MarketplaceProvider, useConnectionState, useMarketplaceEvent } from "../../dist/react.js";

const params = new URLSearchParams(location.search);
const client = createClient({ baseUrl: params.get("api")!, getToken: () => params.get("token") });

function Feed() {
  const [titles, setTitles] = useState<string[]>([]);
  useMarketplaceEvent("request:created", (request, meta) => setTitles((t) => [...t, `${meta.id} ${request.title}`]));
  return <ul id="feed">{titles.map((t) => <li key={t}>{t}</li>)}</ul>;
}

function State() {
  return <output id="state">{useConnectionState()}</output>;
}

let setView: (v: { provider: boolean; feed: boolean }) => void = () => undefined;

function App() {
  const [view, set] = useState({ provider: true, feed: true });
  setView = set;
  if (!view.provider) return <p id="none">no provider</p>;
  return (
    <MarketplaceProvider client={client}>
      <State />
      {view.feed ? <Feed /> : null}
    </MarketplaceProvider>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

(window as unknown as { harness: unknown }).harness = {
  show: (provider: boolean, feed: boolean) => flushSync(() => setView({ provider, feed })),
  listeners: (event: string) => client.socket.listeners(event as "request:created").length,
  connected: () => client.socket.connected,
  state: () => client.status.state,
};

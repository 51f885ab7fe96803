// The example page: log in (or create an account), see purchase requests arrive live, chat.
// Everything talks to the server through @marketplace/client: `client.rest` for REST, the
// provider's live socket for events (which survives token expiry and server restarts, and
// catches up on what it missed).
import { StrictMode, useCallback, useEffect, useMemo, useState, type FormEvent } from "react";
import { createRoot } from "react-dom/client";
import {
  createClient,
  type Chat,
  type MarketplaceClient,
  type Message,
  type Problem,
  type PurchaseRequest,
  type User,
} from "@marketplace/client";
import {
  MarketplaceProvider,
  useConnectionStatus,
  useMarketplace,
  useMarketplaceEvent,
} from "@marketplace/client/react";

/** What survives a reload of the tab: the server, the token and where the events stood. */
interface Session {
  api: string;
  token: string;
  user: User;
  lastEventId: number | null;
}

const SESSION = "marketplace-example-session";

function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(SESSION);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

function saveSession(session: Session | null): void {
  if (session) sessionStorage.setItem(SESSION, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION);
}

/** A problem document (or anything thrown) as one line for the page. */
function explain(error: unknown): string {
  const p = error as Partial<Problem> | undefined;
  if (p && typeof p === "object" && "status" in p) {
    const fields = p.errors?.map((e) => `${e.field}: ${e.message}`).join("; ");
    return `${p.title ?? "Error"} (${p.status}): ${fields || p.detail || p.code}`;
  }
  return error instanceof Error ? error.message : String(error);
}

const defaultApi = new URLSearchParams(location.search).get("api") ?? "http://127.0.0.1:3000";

function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  const signIn = (s: Session) => {
    saveSession(s);
    setSession(s);
  };
  const signOut = () => {
    saveSession(null);
    setSession(null);
  };
  if (!session) return <SignIn onSignedIn={signIn} />;
  return <Signed key={`${session.api} ${session.user.id}`} session={session} onSignOut={signOut} />;
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [mode, setMode] = useState<"login" | "register">("login");
  const [api, setApi] = useState(defaultApi);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const email = String(form.get("email"));
    const password = String(form.get("password"));
    setBusy(true);
    setError(null);
    // No token yet: a client without getToken.
    const { rest } = createClient({ baseUrl: api });
    const answer =
      mode === "login"
        ? await rest.POST("/api/auth/login", { body: { email, password } })
        : await rest.POST("/api/auth/register", {
            body: { email, password, name: String(form.get("name")), role: String(form.get("role")) },
          });
    setBusy(false);
    if (answer.error || !answer.data) {
      setError(explain(answer.error));
      return;
    }
    onSignedIn({ api, token: answer.data.token, user: answer.data.user, lastEventId: null });
  }

  return (
    <main className="narrow">
      <h1>Marketplace</h1>
      <form onSubmit={submit} aria-label={mode === "login" ? "Log in" : "Create an account"}>
        <label>
          Server
          <input name="api" value={api} onChange={(e) => setApi(e.target.value)} required />
        </label>
        <label>
          Email
          <input name="email" type="email" autoComplete="username" required />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required minLength={8} />
        </label>
        {mode === "register" ? (
          <>
            <label>
              Name
              <input name="name" required />
            </label>
            <label>
              Role
              <select name="role" defaultValue="buyer">
                <option value="buyer">buyer</option>
                <option value="seller">seller</option>
              </select>
            </label>
          </>
        ) : null}
        <button type="submit" disabled={busy}>
          {mode === "login" ? "Log in" : "Create account"}
        </button>
        {error ? <p role="alert">{error}</p> : null}
      </form>
      <p>
        <button type="button" className="link" onClick={() => setMode(mode === "login" ? "register" : "login")}>
          {mode === "login" ? "Create an account instead" : "Log in instead"}
        </button>
      </p>
    </main>
  );
}

function Signed({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const client = useMemo(
    () =>
      createClient({
        baseUrl: session.api,
        getToken: () => session.token,
        lastEventId: session.lastEventId,
      }),
    [session],
  );
  // Keep the newest event id, so a reload resumes where this tab stood.
  useEffect(
    () =>
      client.onStatus((s) => {
        if (s.lastEventId !== null) saveSession({ ...session, lastEventId: s.lastEventId });
      }),
    [client, session],
  );
  return (
    <MarketplaceProvider client={client}>
      <Header user={session.user} onSignOut={onSignOut} />
      <main className="columns">
        <Requests user={session.user} />
        <Chats user={session.user} />
      </main>
    </MarketplaceProvider>
  );
}

function Header({ user, onSignOut }: { user: User; onSignOut: () => void }) {
  const status = useConnectionStatus();
  return (
    <header>
      <strong>Marketplace</strong>
      <span>
        {user.name} ({user.role})
      </span>
      <span className={`state ${status.state}`} data-testid="connection" title={status.error?.message ?? ""}>
        {status.state}
      </span>
      <button type="button" onClick={onSignOut}>
        Log out
      </button>
    </header>
  );
}

function Requests({ user }: { user: User }) {
  const { rest } = useMarketplace();
  const [requests, setRequests] = useState<PurchaseRequest[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const query = user.role === "buyer" ? { mine: true, limit: 50 } : { status: "open", limit: 50 };
    rest.GET("/api/requests", { params: { query } }).then(({ data, error }) => {
      if (data) setRequests((live) => merge(live, data.items));
      else setError(explain(error));
    });
  }, [rest, user.role]);

  // Sellers hear of every new request; a buyer's own appear through the form's answer.
  useMarketplaceEvent("request:created", (request) => setRequests((list) => merge(list, [request])));
  useMarketplaceEvent("request:status-updated", ({ requestId, status }) =>
    setRequests((list) => list.map((r) => (r.id === requestId ? { ...r, status } : r))),
  );

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const formEl = e.currentTarget;
    const form = new FormData(formEl);
    const { data, error } = await rest.POST("/api/requests", {
      body: {
        title: String(form.get("title")),
        description: String(form.get("description")),
        category: String(form.get("category")),
      },
    });
    if (data) {
      setRequests((list) => merge(list, [data]));
      formEl.reset();
      setError(null);
    } else setError(explain(error));
  }

  return (
    <section aria-labelledby="requests-title">
      <h2 id="requests-title">{user.role === "buyer" ? "My requests" : "Open requests"}</h2>
      {user.role === "buyer" ? (
        <form onSubmit={create} className="new-request" aria-label="New request">
          <input name="title" placeholder="What are you looking for?" aria-label="Title" required />
          <input name="description" placeholder="Details" aria-label="Description" required />
          <input name="category" placeholder="Category" aria-label="Category" required />
          <button type="submit">Post</button>
        </form>
      ) : null}
      {error ? <p role="alert">{error}</p> : null}
      <ul className="requests" data-testid="requests">
        {requests.map((r) => (
          <li key={r.id}>
            <span className="title">{r.title}</span> <span className="muted">{r.category}</span>{" "}
            <span className={`badge ${r.status}`}>{r.status}</span>
          </li>
        ))}
      </ul>
      {requests.length === 0 ? <p className="muted">Nothing yet.</p> : null}
    </section>
  );
}

/** `incoming` added to `list` (newest first by creation), each id once. */
function merge(list: PurchaseRequest[], incoming: PurchaseRequest[]): PurchaseRequest[] {
  const byId = new Map(list.map((r) => [r.id, r]));
  for (const r of incoming) byId.set(r.id, r);
  return [...byId.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

function Chats({ user }: { user: User }) {
  const { rest } = useMarketplace();
  const [chats, setChats] = useState<Chat[]>([]);
  const [open, setOpen] = useState<string | null>(null);

  const reload = useCallback(() => {
    rest.GET("/api/chats", { params: { query: { limit: 50 } } }).then(({ data }) => {
      if (data) setChats(data.items);
    });
  }, [rest]);
  useEffect(reload, [reload]);
  // A new offer opens a chat; a message moves one up.
  useMarketplaceEvent("request:offer-received", reload);
  useMarketplaceEvent("chat:new-message", reload);

  return (
    <section aria-labelledby="chats-title">
      <h2 id="chats-title">Chats</h2>
      <ul className="chats" data-testid="chats">
        {chats.map((c) => (
          <li key={c.id}>
            <button type="button" className={c.id === open ? "current" : ""} onClick={() => setOpen(c.id === open ? null : c.id)}>
              Chat on request {c.requestId.slice(-6)} with {user.id === c.buyerId ? "the seller" : "the buyer"}
              {c.unreadCount > 0 && c.id !== open ? <span className="badge">{c.unreadCount}</span> : null}
            </button>
          </li>
        ))}
      </ul>
      {chats.length === 0 ? <p className="muted">An offer opens a chat between its buyer and seller.</p> : null}
      {open ? <ChatView key={open} chatId={open} me={user} /> : null}
    </section>
  );
}

function ChatView({ chatId, me }: { chatId: string; me: User }) {
  const client: MarketplaceClient = useMarketplace();
  const [messages, setMessages] = useState<Message[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    // The chat's room carries read receipts and typing; the SDK joins it again after a reconnect.
    const socket = client.socket;
    socket.emit("join-chat-room", chatId, (answer) => {
      if (!answer.ok) setError(`cannot follow this chat: ${answer.error}`);
    });
    client.rest
      .GET("/api/chats/{id}/messages", { params: { path: { id: chatId }, query: { limit: 50 } } })
      .then(({ data, error }) => {
        if (data) setMessages((live) => add(live, data.items));
        else setError(explain(error));
      });
    return () => {
      socket.emit("leave-chat-room", chatId, () => undefined);
    };
  }, [client, chatId]);

  useMarketplaceEvent("chat:new-message", (message) => {
    if (message.chatId === chatId) setMessages((list) => add(list, [message]));
  });

  const newest = messages.at(-1);
  useEffect(() => {
    if (newest && newest.senderId !== me.id) {
      void client.rest.POST("/api/chats/{id}/read", { params: { path: { id: chatId } }, body: { messageId: newest.id } });
    }
  }, [client, chatId, newest, me.id]);

  async function send(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const formEl = e.currentTarget;
    const content = String(new FormData(formEl).get("content"));
    const { data, error } = await client.rest.POST("/api/chats/{id}/messages", {
      params: { path: { id: chatId } },
      body: { content },
    });
    if (data) {
      setMessages((list) => add(list, [data]));
      formEl.reset();
      setError(null);
    } else setError(explain(error));
  }

  return (
    <div className="chat" data-testid="chat">
      <ol className="messages">
        {messages.map((m) => (
          <li key={m.id} className={m.senderId === me.id ? "mine" : "theirs"}>
            {m.content}
          </li>
        ))}
      </ol>
      <form onSubmit={send} className="inline" aria-label="Send a message">
        <input name="content" placeholder="Write a message" aria-label="Message" required maxLength={4000} />
        <button type="submit">Send</button>
      </form>
      {error ? <p role="alert">{error}</p> : null}
    </div>
  );
}

/** `incoming` added to `list` (oldest first), each id once. */
function add(list: Message[], incoming: Message[]): Message[] {
  const byId = new Map(list.map((m) => [m.id, m]));
  for (const m of incoming) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}

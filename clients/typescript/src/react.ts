// @marketplace/client/react: the live socket of one client for a React tree.
//
//   <MarketplaceProvider client={client}> ... </MarketplaceProvider>
//   useMarketplaceEvent("request:created", (request, meta) => ...);
//   const state = useConnectionState(); // "connecting" | "connected" | "disconnected"
import {
  createContext,
  createElement,
  useContext,
  useEffect,
  useRef,
  useSyncExternalStore,
  type ReactNode,
} from "react";
import type { ServerToClientEvents } from "./generated/api.js";
import type { MarketplaceClient } from "./index.js";
import type { ConnectionState, ConnectionStatus } from "./live.js";

const Context = createContext<MarketplaceClient | null>(null);

export interface MarketplaceProviderProps {
  client: MarketplaceClient;
  children?: ReactNode;
}

/**
 * Opens the client's live socket on mount and closes it on unmount: one socket per provider
 * (give each provider its own client). Its hooks work anywhere below it.
 */
export function MarketplaceProvider({ client, children }: MarketplaceProviderProps) {
  useEffect(() => {
    const socket = client.live();
    return () => {
      socket.disconnect();
    };
  }, [client]);
  return createElement(Context.Provider, { value: client }, children);
}

/** The client of the nearest provider (for REST calls: `useMarketplace().rest.GET(...)`). */
export function useMarketplace(): MarketplaceClient {
  const client = useContext(Context);
  if (!client) throw new Error("useMarketplace… must be used inside <MarketplaceProvider>");
  return client;
}

/**
 * Calls `handler` for every `event` the live socket hands on (durable ones as
 * `(payload, meta)`, exactly once each, in order). The listener is added once and removed on
 * unmount; a new `handler` on each render is fine (the latest one is called).
 */
export function useMarketplaceEvent<E extends keyof ServerToClientEvents>(
  event: E,
  handler: ServerToClientEvents[E],
): void {
  const client = useMarketplace();
  const latest = useRef(handler);
  useEffect(() => {
    latest.current = handler;
  });
  useEffect(() => {
    const socket = client.socket;
    const listener = (...args: unknown[]) => (latest.current as (...a: unknown[]) => void)(...args);
    socket.on(event, listener as never);
    return () => {
      socket.off(event, listener as never);
    };
  }, [client, event]);
}

/** The live socket's full status (state, last error, newest event id). */
export function useConnectionStatus(): ConnectionStatus {
  const client = useMarketplace();
  return useSyncExternalStore(
    (notify) => client.onStatus(notify),
    () => client.status,
    () => client.status,
  );
}

/** `"connecting" | "connected" | "disconnected"`, re-rendering when it changes. */
export function useConnectionState(): ConnectionState {
  const client = useMarketplace();
  return useSyncExternalStore(
    (notify) => client.onStatus(notify),
    () => client.status.state,
    () => "disconnected" as const,
  );
}

export type { ConnectionState, ConnectionStatus } from "./live.js";

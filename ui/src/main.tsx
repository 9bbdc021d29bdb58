// Entry point: React with TanStack Query (the backend's answers are cached per key and
// refetched when a validation pass or an edit changes them).
import "./locale";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import "./style.css";

const client = new QueryClient({
  defaultOptions: { queries: { staleTime: Infinity, retry: false, refetchOnWindowFocus: false } },
});

const root = document.getElementById("app");
if (root) {
  // A screen that breaks shows why instead of a blank window.
  const broke = (e: unknown) => {
    root.textContent = `Metasync's window stopped on an error: ${e instanceof Error ? e.stack || e.message : String(e)}`;
  };
  createRoot(root, { onUncaughtError: broke }).render(
    <StrictMode>
      <QueryClientProvider client={client}>
        <App />
      </QueryClientProvider>
    </StrictMode>,
  );
}

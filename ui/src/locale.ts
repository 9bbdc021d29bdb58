// Imported first: a POSIX locale ("C", as on servers and in CI) reaches the webview as
// navigator.language = "C", which Intl refuses; uPlot builds a number format from it
// when it loads. Such a language is read as en-US; a real one is kept.
function usable(tag: string): boolean {
  try {
    new Intl.NumberFormat(tag);
    return true;
  } catch {
    return false;
  }
}

if (typeof navigator !== "undefined" && !usable(navigator.language)) {
  Object.defineProperty(navigator, "language", { get: () => "en-US", configurable: true });
}

export {};

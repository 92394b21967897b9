// Paycode service worker: network first, cache as fallback, for the app shell only.
//
// The page, its wasm, JS and CSS are fetched from the proxy as usual and a copy is kept, so a
// reload while the proxy is briefly unreachable still shows the checkout (with its offline
// banner) and resumes the payment stored in localStorage. API calls (/api/) are never
// cached: a payment's state always comes from the proxy.
const CACHE = "paycode-shell-v1";

self.addEventListener("install", (event) => {
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || url.pathname.startsWith("/api/")) {
    return;
  }
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          // The shell is keyed without its query (?amount=… opens the same page).
          const key = request.mode === "navigate" ? "/" : url.pathname;
          caches.open(CACHE).then((cache) => cache.put(key, copy));
        }
        return response;
      })
      .catch(() =>
        caches.match(request.mode === "navigate" ? "/" : url.pathname).then((cached) => cached || Response.error()),
      ),
  );
});

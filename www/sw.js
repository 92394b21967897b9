// Paycode service worker: the app shell offline, and hashed assets from the cache.
//
// - Trunk's content-hashed files (name-<16 hex digits>.wasm/.js/.css/.svg) never change: they
//   are served from the cache when present (cache first), fetched and kept otherwise. The
//   proxy sends them with `Cache-Control: immutable` too; this also covers a tablet whose
//   HTTP cache was cleared.
// - The page itself (navigations), sw.js and the manifest go to the network first, so a new
//   release is seen at once; the last copy answers when the proxy is briefly unreachable, so
//   a reload still shows the checkout (with its offline banner) and resumes the payment
//   stored in localStorage.
// - API calls (/api/) are never cached: a payment's state always comes from the proxy.
const CACHE = "paycode-shell-v2";
const HASHED = /-[0-9a-f]{16}(_bg)?\.[a-z0-9]+$/;

self.addEventListener("install", () => {
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

function keep(key, response) {
  if (response.ok) {
    const copy = response.clone();
    caches.open(CACHE).then((cache) => cache.put(key, copy));
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || url.pathname.startsWith("/api/")) {
    return;
  }
  if (HASHED.test(url.pathname)) {
    event.respondWith(
      caches.match(url.pathname).then((cached) => cached || fetch(request).then((response) => keep(url.pathname, response))),
    );
    return;
  }
  // The shell is keyed without its query or fragment (?amount=… and #pair=… open the same page).
  const key = request.mode === "navigate" ? "/" : url.pathname;
  event.respondWith(
    fetch(request)
      .then((response) => keep(key, response))
      .catch(() => caches.match(key).then((cached) => cached || Response.error())),
  );
});

// Paycode service worker (docs/tablets.md §5): Trunk's content-hashed files cache first, the
// shell network first with its last copy offline, /api/ never. Short: it is sent as it is.
const CACHE = "paycode-shell-v2";
// Trunk's hash in hex: 16 digits, fewer when it starts with zeros (proxy/src/startup.rs).
const HASHED = /-[0-9a-f]{8,16}(_bg)?\.[a-z0-9]+$/;

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
  // One key for the shell, whatever its query or fragment (?amount=…, #pair=…).
  const key = request.mode === "navigate" ? "/" : url.pathname;
  event.respondWith(
    fetch(request)
      .then((response) => keep(key, response))
      .catch(() => caches.match(key).then((cached) => cached || Response.error())),
  );
});

// Service worker of the phone app: serves the app shell from the cache, so /m opens offline.
"use strict";

const CACHE = "phone-shell-{{ version }}";
const SHELL = {{ shell | tojson }};
const APP_PAGE = "{{ url_for('phone.index') }}";

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names.filter((n) => n.startsWith("phone-shell-") && n !== CACHE).map((n) => caches.delete(n)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  // The scope "/m" also matches other paths that start with /m; leave those alone, and the
  // Socket.IO traffic too: only the shell is answered from the cache.
  const isPage = url.pathname === APP_PAGE;
  if (!isPage && !SHELL.includes(url.pathname)) return;
  event.respondWith(
    caches
      .match(isPage ? APP_PAGE : url.pathname, { cacheName: CACHE })
      .then((hit) => hit || fetch(event.request)),
  );
});

// The phone pass page's service worker (scope /passes/): the page and its scripts come
// from the network when there is one, else from the cache, so the pass shows offline.
"use strict";
const CACHE = "checkin-pass-v1";
const ASSETS = ["/static/declare.css", "/static/qrcode-generator.js", "/static/pass-phone.js", "/static/noble-ed25519.js"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(ASSETS)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const page = url.pathname.startsWith("/passes/") && url.pathname.endsWith("/phone");
  if (event.request.method !== "GET" || !(page || ASSETS.includes(url.pathname))) return;
  event.respondWith(
    fetch(event.request)
      .then((resp) => {
        if (resp.ok) {
          const copy = resp.clone();
          caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        }
        return resp;
      })
      .catch(() => caches.match(event.request).then((hit) => hit || Response.error()))
  );
});

/* The patient app's service worker (issue 17; docs/offline.md). Served at /me/sw.js by
   speciosa.web.offline_views.service_worker, which writes self.SPECIOSA_OFFLINE (the URLs, the
   static files to keep, how long pages are kept) on the line above this one. Its scope is /me/:
   it never controls a staff page.

   Built on Workbox (vendored under static/speciosa/workbox/<version>/, nothing from a CDN):
   - the app shell (CSS, scripts, icons, the offline page) is precached;
   - the patient's own pages and charts: network first; a copy is kept only when the server
     marked the response (X-Speciosa-Offline: keep), for keepSeconds at most;
   - a diary POST that cannot reach the server is queued in IndexedDB with its one-time
     submission token and sent when the connection returns (Background Sync where the browser
     has it; otherwise when a page opens or comes online). The server stores one record per
     token, so sending an entry twice stores one.
   The queue is this file's own small IndexedDB store, not Workbox's Queue: Workbox takes an
   entry out of its store before sending it (a worker stopped mid-send loses it), and cannot
   hold an entry aside (another patient's, or one the clinic asked about) while sending others.
   Here an entry is deleted only after the server said it has it.
   No user-visible sentence is written here: pages carry them (web/_offline_status.html). */
/* global workbox, importScripts */
"use strict";

var CFG = self.SPECIOSA_OFFLINE;
importScripts(CFG.workbox + "/workbox-sw.js");
if (CFG.push) {
  // the reminders' Web Push handler (speciosa.reminders, push-sw.js): this is the app's worker
  self.SPECIOSA_APP_WORKER = true;
  importScripts(CFG.push);
}
workbox.setConfig({ modulePathPrefix: CFG.workbox, debug: false });

var PAGES = "speciosa-pages";
var SYNC_TAG = "speciosa-diary";
var DB_NAME = "speciosa-offline";

// Workbox modules are loaded here, at start-up (importScripts is refused later).
var precaching = workbox.precaching;
var routing = workbox.routing;
var strategies = workbox.strategies;
var ExpirationPlugin = workbox.expiration.ExpirationPlugin;

precaching.cleanupOutdatedCaches();
precaching.precacheAndRoute(CFG.shell, { ignoreURLParametersMatching: [/.*/] });

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

// ----------------------------------------------------------------------------- pages

function withoutQuery(url) {
  var u = new URL(url);
  return u.origin + u.pathname;
}

var keepMarked = {
  // only what the server marked, and only a clean GET of a page without a query string
  cacheWillUpdate: async function (args) {
    var response = args.response;
    var url = new URL(args.request.url);
    if (!response || response.status !== 200 || url.search) { return null; }
    return response.headers.get(CFG.header) === "keep" ? response : null;
  },
  // "/me/?saved=1" opened offline reads the kept "/me/"
  cacheKeyWillBeUsed: async function (args) { return withoutQuery(args.request.url); }
};

var pages = new strategies.NetworkFirst({
  cacheName: PAGES,
  networkTimeoutSeconds: 6,
  plugins: [keepMarked, new ExpirationPlugin({ maxAgeSeconds: CFG.keepSeconds, maxEntries: 80 })]
});

// every page under /me/ goes to the network first; only what the server marked is kept
function isPatientPath(url) {
  return url.origin === self.location.origin && url.pathname.indexOf(CFG.scope) === 0 &&
    url.pathname !== CFG.sync;
}

routing.registerRoute(function (o) {
  return o.request.method === "GET" && isPatientPath(o.url) && o.url.pathname !== CFG.offline;
}, async function (o) {
  try {
    var response = await pages.handle(o);
    if (response) { return response; }
  } catch (e) { /* offline and not kept: the offline page below */ }
  if (o.request.mode === "navigate") {
    var fallback = await precaching.matchPrecache(CFG.offline);
    if (fallback) { return fallback; }
  }
  return Response.error();
});

// static files the pages use beyond the shell (e.g. an education page's stylesheet)
routing.registerRoute(function (o) {
  return o.request.method === "GET" && o.url.origin === self.location.origin &&
    o.url.pathname.indexOf(CFG.static) === 0;
}, new strategies.StaleWhileRevalidate({
  cacheName: "speciosa-static",
  plugins: [new ExpirationPlugin({ maxEntries: 60 })]
}));

// ----------------------------------------------------------------------------- IndexedDB

function db() {
  return new Promise(function (resolve, reject) {
    var open = indexedDB.open(DB_NAME, 1);
    open.onupgradeneeded = function () {
      var d = open.result;
      d.createObjectStore("queue", { keyPath: "id", autoIncrement: true });
      d.createObjectStore("used", { keyPath: "token" });  // tokens already sent or queued
      d.createObjectStore("pool", { keyPath: "token" });  // fresh tokens for offline diaries
      d.createObjectStore("meta", { keyPath: "key" });
    };
    open.onsuccess = function () { resolve(open.result); };
    open.onerror = function () { reject(open.error); };
  });
}

async function tx(stores, mode, work) {
  var d = await db();
  return new Promise(function (resolve, reject) {
    var t = d.transaction(stores, mode);
    var out;
    t.oncomplete = function () { d.close(); resolve(out); };
    t.onerror = t.onabort = function () { d.close(); reject(t.error); };
    var req = work(t);
    if (req) { req.onsuccess = function () { out = req.result; }; }
  });
}

function getAll(store) { return tx([store], "readonly", function (t) { return t.objectStore(store).getAll(); }); }
function put(store, value) { return tx([store], "readwrite", function (t) { return t.objectStore(store).put(value); }); }
function del(store, key) { return tx([store], "readwrite", function (t) { return t.objectStore(store).delete(key); }); }
function getOne(store, key) { return tx([store], "readonly", function (t) { return t.objectStore(store).get(key); }); }

async function currentUser() {
  var row = await getOne("meta", "user");
  return row ? row.value : null;
}

// ----------------------------------------------------------------------------- the queue

var state = { offline: false, login: false, sent: 0 };

async function digest(text) {
  var bytes = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.prototype.map.call(new Uint8Array(bytes), function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
}

/* The values of a diary form, without its CSRF and one-time tokens: what the server's
   fingerprint compares (speciosa.web.forms.submission_key). */
function values(params) {
  var p = new URLSearchParams(params);
  p.delete("csrfmiddlewaretoken");
  p.delete("token");
  return p.toString();
}

async function takePoolToken() {
  var pool = await getAll("pool");
  if (!pool.length) { return null; }
  await del("pool", pool[0].token);
  return pool[0].token;
}

/* Queue a diary the server could not be reached for. The page it was written on may have
   been opened from this phone's copy, whose token an earlier entry already used: then the
   entry gets one of the fresh tokens the server gave this phone (a token sent again with other
   values is refused). The same values with the same token are the same entry (a double tap):
   kept once. */
async function enqueue(url, body) {
  var params = new URLSearchParams(body);
  var token = params.get("token") || "";
  var hash = await digest(values(body));
  var used = token ? await getOne("used", token) : null;
  if (used && used.hash === hash) {
    var queued = await getAll("queue");
    if (queued.some(function (e) { return e.token === token; })) { return; }
  } else if (used) {
    var fresh = await takePoolToken();
    if (fresh) { params.set("token", fresh); token = fresh; }
  }
  await put("used", { token: token, hash: hash, at: Date.now() });
  await put("queue", { url: url, body: params.toString(), token: token, user: await currentUser(),
                       queuedAt: Date.now(), problem: false });
  if (self.registration.sync) {
    try { await self.registration.sync.register(SYNC_TAG); } catch (e) { /* sent on next open */ }
  }
}

routing.registerRoute(function (o) {
  return o.request.method === "POST" && o.url.origin === self.location.origin &&
    o.url.pathname.indexOf(CFG.scope + "diary/") === 0;
}, async function (o) {
  var request = o.request;
  var body = await request.clone().text();
  var params = new URLSearchParams(body);
  var token = params.get("token");
  var hash = await digest(values(body));
  var used = token ? await getOne("used", token) : null;
  if (used && used.hash !== hash) {
    // a page kept on the phone, whose token an entry already used, sent on a slow connection
    var fresh = await takePoolToken();
    if (fresh) {
      params.set("token", fresh);
      token = fresh;
      body = params.toString();
      request = new Request(request.url, { method: "POST", body: body, credentials: "same-origin",
        redirect: "manual", headers: { "Content-Type": "application/x-www-form-urlencoded" } });
    }
  }
  try {
    var response = await fetch(request);
    if (token) { await put("used", { token: token, hash: hash, at: Date.now() }); }
    return response;
  } catch (e) {
    await enqueue(request.url, body);
    state.offline = true;
    notify();
    var urgent = new URLSearchParams(body).getAll("side_effects").some(function (v) {
      return CFG.urgent.indexOf(v) >= 0;
    });
    return Response.redirect(urgent ? CFG.help : CFG.me + "?queued=1", 303);
  }
}, "POST");

var replaying = null;

/* Send what waits, oldest first, for the patient logged in now. Stops at the first entry that
   cannot reach the server; an ended session keeps everything and says so. */
function replay() {
  if (!replaying) {
    replaying = doReplay().finally(function () {
      replaying = null;
      return notify().then(function () { state.sent = 0; });
    });
  }
  return replaying;
}

async function doReplay() {
  var entries = await getAll("queue");
  if (!entries.length && (await getAll("pool")).length >= 5) {
    state.login = false;  // nothing to send, tokens enough: no call to the server
    return;
  }
  var info;
  try {
    var r = await fetch(CFG.sync, { credentials: "same-origin", redirect: "manual",
                                    headers: { Accept: "application/json" } });
    if (r.status !== 200) { state.login = true; state.offline = false; return; }
    info = await r.json();
  } catch (e) {
    state.offline = true;
    return;
  }
  state.offline = false;
  state.login = false;
  await put("meta", { key: "user", value: info.user });
  await tx(["pool"], "readwrite", function (t) {
    var s = t.objectStore("pool");
    s.clear();
    info.tokens.forEach(function (token) { s.put({ token: token }); });
  });
  for (var i = 0; i < entries.length; i++) {
    var entry = entries[i];
    if (entry.problem) { continue; }  // waits for the patient to open it
    if (entry.user !== null && entry.user !== info.user) { continue; }  // someone else's
    var body = new URLSearchParams(entry.body);
    body.delete("csrfmiddlewaretoken");  // the header's fresh one counts
    var response;
    try {
      response = await fetch(entry.url, {
        method: "POST", body: body.toString(), credentials: "same-origin", redirect: "manual",
        headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": info.csrf,
                   [CFG.replayHeader]: "1" }
      });
    } catch (e) {
      state.offline = true;
      return;
    }
    if (response.status === 201) {
      await del("queue", entry.id);
      state.sent += 1;
    } else if (response.type === "opaqueredirect" || response.status === 403) {
      state.login = true;  // the session ended (a redirect to log in) or is someone else's
      return;
    } else if (response.status >= 500) {
      return;  // the server's trouble, not the entry's: sent again later
    } else {
      entry.problem = true;  // the server refused the values: the patient checks them
      await put("queue", entry);
    }
  }
}

self.addEventListener("sync", function (event) {
  if (event.tag === SYNC_TAG) { event.waitUntil(replay()); }
});

// ----------------------------------------------------------------------------- pages talk

async function status() {
  var user = await currentUser();
  var entries = (await getAll("queue")).filter(function (e) { return e.user === null || e.user === user; });
  return {
    type: "status",
    waiting: entries.filter(function (e) { return !e.problem; }).length,
    problems: entries.filter(function (e) { return e.problem; }).map(function (e) { return e.id; }),
    offline: state.offline, login: state.login, sent: state.sent
  };
}

async function notify() {
  var message = await status();
  var clients = await self.clients.matchAll({ includeUncontrolled: true });
  clients.forEach(function (c) { c.postMessage(message); });
}

/* Log out: delete every copy of a page and everything queued (the server's Clear-Site-Data
   does the same; this is for a browser that ignores it). */
async function forget() {
  var names = await caches.keys();
  await Promise.all(names.filter(function (n) { return n.indexOf("workbox-precache") !== 0; })
    .map(function (n) { return caches.delete(n); }));
  await tx(["queue", "used", "pool", "meta"], "readwrite", function (t) {
    ["queue", "used", "pool", "meta"].forEach(function (s) { t.objectStore(s).clear(); });
  });
  state = { offline: false, login: false, sent: 0 };
}

self.addEventListener("message", function (event) {
  var data = event.data || {};
  var reply = function (message) { if (event.ports && event.ports[0]) { event.ports[0].postMessage(message); } };
  var work;
  if (data.type === "hello") {
    // a page of the app opened: it says who is logged in; send what waits if online
    work = (async function () {
      if (data.user) { await put("meta", { key: "user", value: data.user }); }
      if (data.online) { await replay(); }
      reply(await status());
    })();
  } else if (data.type === "replay") {
    work = replay().then(status).then(reply);
  } else if (data.type === "status") {
    work = status().then(reply);
  } else if (data.type === "take") {
    // the patient opens an entry the clinic asked about: it leaves the queue for the form
    work = (async function () {
      var entry = await getOne("queue", data.id);
      if (entry) { await del("queue", data.id); }
      reply({ type: "taken", entry: entry || null });
    })();
  } else if (data.type === "forget") {
    work = forget().then(function () { reply({ type: "forgotten" }); });
  }
  if (work) { event.waitUntil(work.then(notify)); }
});

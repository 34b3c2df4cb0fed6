/* Speciosa reminders: the service worker's Web Push handler (issue 16; docs/reminders.md).

   Registered on its own by reminders.js when the patient app has no service worker, or
   imported by the app's worker (/me/sw.js): importScripts("/static/speciosa/push-sw.js").
   A reminder shows the one sentence every reminder says and opens /me/; a link to another
   site is never followed (the payload can only name a path of this one). */
(function () {
  "use strict";
  var TEXT = "You have something to complete in Speciosa.";
  var HOME = "/me/";

  function samePath(url) {
    try {
      var u = new URL(url || HOME, self.location.origin);
      return u.origin === self.location.origin ? u.pathname + u.search : HOME;
    } catch (e) {
      return HOME;
    }
  }

  self.addEventListener("push", function (event) {
    var data = {};
    try { data = event.data ? event.data.json() : {}; } catch (e) { data = {}; }
    var title = typeof data.title === "string" ? data.title : "Speciosa";
    var body = typeof data.body === "string" ? data.body : TEXT;
    event.waitUntil(self.registration.showNotification(title, {
      body: body,
      tag: typeof data.tag === "string" ? data.tag : "speciosa-reminder",
      renotify: true,
      icon: "/static/speciosa/favicon.svg",
      data: { url: samePath(data.url) }
    }));
  });

  self.addEventListener("notificationclick", function (event) {
    event.notification.close();
    var path = samePath(event.notification.data && event.notification.data.url);
    event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (list) {
      for (var i = 0; i < list.length; i++) {
        var c = list[i];
        if (new URL(c.url).pathname.indexOf(HOME) === 0 && "focus" in c) {
          // navigate() works only for a page this worker controls (the app's worker at /me/)
          return c.focus().then(function (w) { return w && "navigate" in w ? w.navigate(path) : w; })
            .catch(function () { return self.clients.openWindow(path); });
        }
      }
      return self.clients.openWindow(path);
    }));
  });

  // on its own (not imported by the app's worker): take over at once
  if (!self.SPECIOSA_APP_WORKER) {
    self.addEventListener("install", function () { self.skipWaiting(); });
    self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });
  }
})();

/* My reminders (issue 16): the phone's time zone, and the Web Push subscription.

   The subscription is made on the patient app's service worker (/me/sw.js, scope /me/) when
   it is installed (it imports push-sw.js), else on push-sw.js registered on its own; it is
   sent to the server, which stores one device per subscription. */
(function () {
  "use strict";
  // the page's language (djangojs.po, from /jsi18n/); English if the catalogue is not loaded
  var gettext = window.gettext || function (text) { return text; };
  var interpolate = window.interpolate || function (fmt, obj) {
    return fmt.replace(/%\((\w+)\)s/g, function (m, name) { return String(obj[name]); });
  };
  var zoneButton = document.getElementById("use-device-zone");
  var zoneSelect = document.getElementById("id_time_zone");
  var here = "";
  try { here = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { here = ""; }
  if (zoneButton && zoneSelect && here && zoneSelect.querySelector('option[value="' + here + '"]')) {
    zoneButton.hidden = false;
    zoneButton.textContent = interpolate(gettext("Use this phone's time zone (%(zone)s)"), { zone: here }, true);
    zoneButton.addEventListener("click", function () { zoneSelect.value = here; });
  }

  var box = document.getElementById("push-setup");
  var button = document.getElementById("push-enable");
  var status = document.getElementById("push-status");
  if (!box || !button) { return; }
  function say(text) { if (status) { status.textContent = text; } }
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    button.hidden = true;
    say(gettext("This browser cannot show notifications from Speciosa; choose e-mail or a text message."));
    return;
  }

  function keyBytes(b64url) {
    var s = b64url.replace(/-/g, "+").replace(/_/g, "/");
    s += "====".slice(0, (4 - (s.length % 4)) % 4);
    var raw = atob(s), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  function active(reg) {
    return new Promise(function (resolve) {
      if (reg.active) { resolve(reg); return; }
      var w = reg.installing || reg.waiting;
      w.addEventListener("statechange", function () { if (w.state === "activated") { resolve(reg); } });
    });
  }

  function registration() {
    return navigator.serviceWorker.getRegistration("/me/").then(function (reg) {
      var worker = reg && (reg.active || reg.waiting || reg.installing);
      if (worker && /\/me\/sw\.js$/.test(worker.scriptURL)) { return active(reg); }
      return navigator.serviceWorker.register(box.getAttribute("data-worker")).then(active);
    });
  }

  function label() {
    var ua = navigator.userAgentData;
    var platform = (ua && ua.platform) || navigator.platform || "";
    var brand = ua && ua.brands && ua.brands.length ? ua.brands[ua.brands.length - 1].brand : "Browser";
    return (brand + (platform ? " on " + platform : "")).slice(0, 120);
  }

  button.addEventListener("click", function () {
    button.disabled = true;
    say(gettext("Asking the phone…"));
    Notification.requestPermission().then(function (answer) {
      if (answer !== "granted") { throw new Error(gettext("Notifications are blocked for this site in the browser's settings.")); }
      return registration();
    }).then(function (reg) {
      return reg.pushManager.getSubscription().then(function (sub) {
        return sub || reg.pushManager.subscribe({ userVisibleOnly: true,
          applicationServerKey: keyBytes(box.getAttribute("data-vapid-key")) });
      });
    }).then(function (sub) {
      var body = sub.toJSON();
      body.label = label();
      return fetch(box.getAttribute("data-subscribe-url"), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": box.getAttribute("data-csrf") },
        body: JSON.stringify(body)
      });
    }).then(function (response) {
      if (!response.ok) { throw new Error(gettext("The server did not take this phone's subscription.")); }
      var push = document.getElementById("id_push");
      if (push) { push.checked = true; }
      say(gettext("Done: this phone gets notifications. Save your reminders to keep the choice."));
    }).catch(function (err) {
      say(err && err.message ? err.message : gettext("Notifications could not be turned on here."));
    }).then(function () { button.disabled = false; });
  });
})();

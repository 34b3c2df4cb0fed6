/* The patient's pages as an app (issue 17; docs/offline.md): registers the service worker
   (/me/sw.js, scope /me/), shows what waits on this phone ("saved on this phone, waiting to
   send (n)") until the server has it, asks the worker to send when the phone is back online,
   and deletes what the phone keeps at log out. Every sentence comes from the page
   (web/_offline_status.html data attributes), none is written here. Without JavaScript or a
   service worker the pages work online exactly as before. */
(function () {
  "use strict";
  if (!("serviceWorker" in navigator)) { return; }

  var box = null;

  function say(name, n) { return (box.getAttribute("data-" + name) || "").replace("{n}", String(n)); }

  function show(node, on) { if (node) { node.hidden = !on; } }

  function render(s) {
    if (!box || !s || s.type !== "status") { return; }
    var line = box.querySelector("[data-line]");
    var waiting = s.waiting || 0;
    var problems = (s.problems || []).length;
    var text = "";
    if (waiting) { text = say("waiting", waiting); } else if (s.sent) { text = say("sent", s.sent); }
    line.textContent = text;
    show(line, Boolean(text));
    var off = box.querySelector("[data-offline-line]");
    off.textContent = say("offline", 0);
    show(off, Boolean(s.offline) || !navigator.onLine);
    var login = box.querySelector("[data-login-line]");
    login.querySelector("[data-text]").textContent = say("login", 0);
    show(login, Boolean(s.login) && (waiting + problems) > 0);
    var problem = box.querySelector("[data-problem-line]");
    problem.querySelector("[data-text]").textContent = say("problem", problems);
    if (problems) { problem.querySelector("[data-open-problem]").setAttribute("data-id", String(s.problems[0])); }
    show(problem, problems > 0);
    box.hidden = !(text || s.offline || !navigator.onLine || problems || (s.login && waiting));
    box.setAttribute("data-left", String(waiting + problems));
    box.setAttribute("data-waiting-now", String(waiting));
    if (s.sent && !waiting && location.pathname === box.getAttribute("data-scope")) {
      location.replace(box.getAttribute("data-scope"));  // the diary list, with what was sent
    }
  }

  /* Ask the active worker; the answer comes back on a channel of its own. */  function ask(message, wait) {
    // answers null after ``wait`` ms, also when no worker ever becomes ready (log out goes on)
    return new Promise(function (resolve) {
      var timer = setTimeout(function () { resolve(null); }, wait || 5000);
      navigator.serviceWorker.ready.then(function (reg) {
        var channel = new MessageChannel();
        channel.port1.onmessage = function (event) { clearTimeout(timer); resolve(event.data); };
        (navigator.serviceWorker.controller || reg.active).postMessage(message, [channel.port2]);
      });
    });
  }

  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  /* An entry the clinic asked about goes back into a normal form post: the server answers with
     the diary form, its values and the question, and the patient saves it from there. */
  function openProblem(id) {
    ask({ type: "take", id: id }).then(function (answer) {
      var entry = answer && answer.entry;
      if (!entry) { return; }
      var form = document.createElement("form");
      form.method = "post";
      form.action = entry.url;
      form.hidden = true;
      new URLSearchParams(entry.body).forEach(function (value, name) {
        if (name === "csrfmiddlewaretoken") { value = csrf(); }
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        input.value = value;
        form.appendChild(input);
      });
      document.body.appendChild(form);
      form.submit();
    });
  }

  /* A today's diary kept on the phone from an earlier day writes into today's diary. */
  function freshDay() {
    var form = document.querySelector("form.diary[data-offline-today]");
    var note = document.querySelector("[data-zone-note]");
    if (!form || !note) { return; }
    var today;
    try {
      var parts = {};
      new Intl.DateTimeFormat("en-US", { timeZone: note.getAttribute("data-site-zone") || undefined,
                                         year: "numeric", month: "2-digit", day: "2-digit" })
        .formatToParts(new Date()).forEach(function (p) { parts[p.type] = p.value; });
      today = parts.year + "-" + parts.month + "-" + parts.day;
    } catch (e) { return; }
    if (today > form.getAttribute("data-offline-day")) {
      form.action = form.getAttribute("data-day-url").replace("0000-00-00", today);
      var p = document.createElement("p");
      p.className = "info";
      p.setAttribute("role", "status");
      p.textContent = form.getAttribute("data-stale-note");
      form.parentNode.insertBefore(p, form);
    }
  }

  function logoutClears() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-logout]"), function (form) {
      form.addEventListener("submit", function (event) {
        if (form.getAttribute("data-cleared")) { return; }
        event.preventDefault();
        var left = parseInt(box.getAttribute("data-left") || "0", 10);
        if (left && !window.confirm(say("logout-confirm", left))) { return; }
        var go = function () { form.setAttribute("data-cleared", "1"); form.submit(); };
        ask({ type: "forget" }, 1500).then(go, go);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    box = document.querySelector("[data-offline-status]");
    if (!box) { return; }
    freshDay();
    logoutClears();
    if (navigator.onLine && location.pathname === box.getAttribute("data-scope")) {
      // keep whom-to-call current on the phone, for a diary with an urgent symptom offline;
      // bounded: a server or worker that never answers would hold a connection open for as
      // long as the page stays open
      var ctl = window.AbortController ? new AbortController() : null;
      if (ctl) { setTimeout(function () { ctl.abort(); }, 8000); }
      // the body is read: Chromium leaves a fetch whose body nobody reads in flight until the
      // response is garbage-collected, so the page never went network-idle (the crawl test)
      fetch(box.getAttribute("data-help"), { credentials: "same-origin", signal: ctl ? ctl.signal : undefined })
        .then(function (r) { return r.text(); })
        .catch(function () {});
    }
    box.querySelector("[data-open-problem]").addEventListener("click", function (event) {
      openProblem(parseInt(event.currentTarget.getAttribute("data-id"), 10));
    });
    navigator.serviceWorker.addEventListener("message", function (event) { render(event.data); });
    navigator.serviceWorker.register(box.getAttribute("data-sw"), { scope: box.getAttribute("data-scope") })
      .catch(function () { /* no worker: the pages still work online */ });
    ask({ type: "hello", user: parseInt(box.getAttribute("data-user"), 10) || null,
          online: navigator.onLine }).then(render);
    window.addEventListener("online", function () { ask({ type: "replay" }).then(render); });
    // a connection that came back without an "online" event (or a send that failed half-way):
    // try again now and then while something waits
    setInterval(function () {
      if (navigator.onLine && parseInt(box.getAttribute("data-waiting-now") || "0", 10) > 0) {
        ask({ type: "replay" }).then(render);
      }
    }, 20000);
    window.addEventListener("offline", function () { ask({ type: "status" }).then(function (s) {
      if (s) { s.offline = true; } render(s);
    }); });
  });
}());

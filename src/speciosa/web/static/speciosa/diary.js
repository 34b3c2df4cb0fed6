/* The diary page (issue 15), as progressive enhancement: without JavaScript the page works
   the same (the "Add another dose" button posts the form back with one more row; times are
   read in the clinic's time zone).
   - The browser's time zone goes with the form; when it differs from the clinic's, the times
     are read in it and the note above the doses says so.
   - "Add another dose" adds a row here, without a round trip.
   - Choosing capsules fills in the patient's usual capsule product (product and grams per
     capsule of their last capsule dose) when those fields are empty, to check. */
(function () {
  "use strict";
  // the page's language (djangojs.po, from /jsi18n/); English if the catalogue is not loaded
  var gettext = window.gettext || function (text) { return text; };
  var interpolate = window.interpolate || function (fmt, obj) {
    return fmt.replace(/%\((\w+)\)s/g, function (m, name) { return String(obj[name]); });
  };

  function zone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
  }

  function hhmm(iso, tz) {
    try {
      var parts = new Intl.DateTimeFormat("en-GB", {hour: "2-digit", minute: "2-digit", hour12: false, timeZone: tz})
        .formatToParts(new Date(iso));
      var h = "", m = "";
      parts.forEach(function (p) { if (p.type === "hour") { h = p.value; } if (p.type === "minute") { m = p.value; } });
      return h && m ? (h === "24" ? "00" : h) + ":" + m : "";
    } catch (e) { return ""; }
  }

  function followUnit(row, rows) {
    var unit = row.querySelector("select[name$='-unit']");
    if (!unit) { return; }
    unit.addEventListener("change", function () {
      var gpc = row.querySelector("input[name$='-grams_per_capsule']");
      var product = row.querySelector("input[name$='-product']");
      var details = row.querySelector("details.label-info");
      if (unit.value !== "capsule" || !gpc) { return; }
      if (details) { details.open = true; }
      var usual = rows.getAttribute("data-usual-gpc");
      if (usual && !gpc.value) {
        gpc.value = usual;
        if (product && !product.value) { product.value = rows.getAttribute("data-usual-product") || ""; }
        var note = document.createElement("p");
        note.className = "info small";
        note.textContent = gettext("Filled in from your usual capsules: check them against the label.");
        gpc.closest(".row").before(note);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form.diary");
    if (!form) { return; }
    var tzInput = form.querySelector("input[name=browser_tz]");
    var note = document.querySelector("[data-zone-note]");
    var here = zone();
    var site = note ? note.getAttribute("data-site-zone") : "";
    if (tzInput && here) {
      tzInput.value = here;
      if (note && site && here !== site) {
        note.textContent = interpolate(
          gettext("Times are read in your device's time zone, %(here)s (the clinic's is %(site)s)."),
          { here: here, site: site }, true);
      }
    }
    if (here && site && here !== site) {
      // times already recorded, shown in the zone the new ones are read in
      Array.prototype.forEach.call(document.querySelectorAll("[data-at]"), function (node) {
        node.textContent = hhmm(node.getAttribute("data-at"), here) || node.textContent;
      });
      var local = form.querySelector("[data-local-time]");
      var time = form.querySelector("input[name=time]");
      if (local && time && !form.querySelector(".error")) {
        time.value = hhmm(local.getAttribute("data-local-time"), here) || time.value;
      }
    }
    var rows = form.querySelector("[data-dose-rows]");
    var template = form.querySelector("template[data-dose-template]");
    var total = form.querySelector("input[name='doses-TOTAL_FORMS']");
    var add = form.querySelector("[data-add-dose]");
    if (!rows) { return; }
    Array.prototype.forEach.call(rows.querySelectorAll("[data-dose-row]"), function (r) { followUnit(r, rows); });
    if (!template || !total || !add) { return; }
    var max = parseInt(rows.getAttribute("data-max"), 10) || 12;
    add.type = "button";  // Enter in a field saves the diary; this button only adds a row
    add.addEventListener("click", function () {
      var i = parseInt(total.value, 10) || 0;
      if (i >= max) { return; }
      var html = template.innerHTML.replace(/__prefix__/g, String(i)).replace(/__n__/g, String(i + 1));
      var holder = document.createElement("div");
      holder.innerHTML = html;
      var row = holder.firstElementChild;
      rows.appendChild(row);
      total.value = String(i + 1);
      followUnit(row, rows);
      var time = row.querySelector("input[type=time]");
      if (time) { time.focus(); }
      if (i + 1 >= max) { add.hidden = true; }
    });
  });
}());

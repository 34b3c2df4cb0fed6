/* Speciosa charts: renders the Vega-Lite specs of charts.json with the vendored vega-embed,
   drives the range selector (x_start / x_end signals shared by every panel) and the table view.
   No inline script: each chart section names its JSON source in data-charts-src. */
(function () {
  "use strict";
  // the page's language (djangojs.po, from /jsi18n/); English if the catalogue is not loaded
  var gettext = window.gettext || function (text) { return text; };
  var interpolate = window.interpolate || function (fmt, obj) {
    return fmt.replace(/%\((\w+)\)s/g, function (m, name) { return String(obj[name]); });
  };

  var instances = [];
  window.speciosaCharts = instances;

  function fmtDay(ms) {
    return new Date(ms).toLocaleDateString(document.documentElement.lang || undefined, { timeZone: "UTC", day: "numeric", month: "short", year: "numeric" });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function buildTables(container, tables) {
    tables.forEach(function (t) {
      var wrap = el("div", { "class": "table-scroll" });
      var table = el("table", { id: "table-" + t.id });
      table.appendChild(el("caption", {}, t.caption + " (" + t.rows.length + " rows)"));
      var thead = el("thead"), tr = el("tr");
      t.columns.forEach(function (c) { tr.appendChild(el("th", { scope: "col" }, c)); });
      thead.appendChild(tr);
      table.appendChild(thead);
      var tbody = el("tbody");
      if (!t.rows.length) {
        var empty = el("tr");
        empty.appendChild(el("td", { colspan: String(t.columns.length) }, gettext("None recorded.")));
        tbody.appendChild(empty);
      }
      t.rows.forEach(function (r) {
        var row = el("tr");
        r.forEach(function (cell, i) {
          row.appendChild(el(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, cell === null ? "" : cell));
        });
        tbody.appendChild(row);
      });
      table.appendChild(tbody);
      wrap.appendChild(table);
      container.appendChild(wrap);
    });
  }

  function buildExposure(node, ex) {
    if (!ex) { return; }
    if (!ex.available) {
      node.appendChild(el("p", {}, interpolate(gettext("Exposure estimate not shown: %(problem)s"), { problem: ex.problem }, true)));
      node.hidden = false;
      return;
    }
    node.appendChild(el("p", {}, ex.label)).classList.add("strong");
    ex.lines.forEach(function (line) { node.appendChild(el("p", {}, line)); });
    var details = el("details");
    details.appendChild(el("summary", {}, gettext("Model assumptions")));
    var ul = el("ul");
    ex.assumptions.forEach(function (a) { ul.appendChild(el("li", {}, a)); });
    (ex.unconverted || []).forEach(function (u) { ul.appendChild(el("li", {}, interpolate(gettext("Not counted: %(what)s"), { what: u }, true))); });
    details.appendChild(ul);
    node.appendChild(details);
    node.hidden = false;
  }

  function Charts(root) {
    this.root = root;
    this.views = {};
    this.gutter = {};
    this.payload = null;
    this.range = null;
    this.width = 0;
  }

  Charts.prototype.ranges = function () {
    return this.payload.specs.main.usermeta.ranges;
  };

  Charts.prototype.render = function (key, retried) {
    var self = this;
    var node = this.root.querySelector('[data-chart="' + key + '"]');
    if (!node) { return Promise.resolve(); }
    var spec = JSON.parse(JSON.stringify(this.payload.specs[key]));
    var meta = spec.usermeta || {};
    var gutter = this.gutter[key] !== undefined ? this.gutter[key] : (meta.gutter || 80);
    var width = Math.max(160, Math.floor(node.clientWidth - gutter));
    spec.vconcat.forEach(function (p) { p.width = width; });
    var r = this.ranges()[this.range];
    spec.params.forEach(function (p) {
      if (p.name === "x_start") { p.value = r[0]; }
      if (p.name === "x_end") { p.value = r[1]; }
    });
    if (this.views[key]) { this.views[key].finalize(); }
    return window.vegaEmbed(node, spec, {
      // CSP without 'unsafe-eval' or inline styles: Vega's expression interpreter, no injected <style>
      // and no injected tooltip <style> either (its rules are in charts.css)
      actions: false, renderer: "svg", ast: true, expr: window.vega.expressionInterpreter, defaultStyle: false,
      tooltip: { disableDefaultStyle: true } }).then(function (result) {
      self.views[key] = result.view;
      var svg = node.querySelector("svg");
      var actual = svg ? parseFloat(svg.getAttribute("width")) : width + gutter;
      self.gutter[key] = actual - width;
      if (!retried && Math.abs(actual - node.clientWidth) > 4) {
        return self.render(key, true);
      }
      return result.view;
    });
  };

  Charts.prototype.setRange = function (range) {
    var self = this;
    this.range = range;
    var r = this.ranges()[range];
    this.root.querySelectorAll("[data-range]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-range") === range ? "true" : "false");
    });
    this.root.setAttribute("data-current-range", range);
    var status = this.root.querySelector(".chart-status");
    if (status) { status.textContent = interpolate(gettext("Showing %(start)s – %(end)s."), { start: fmtDay(r[0]), end: fmtDay(r[1]) }, true); }
    return Promise.all(Object.keys(this.views).map(function (key) {
      return self.views[key].signal("x_start", r[0]).signal("x_end", r[1]).runAsync();
    }));
  };

  Charts.prototype.start = function () {
    var self = this, root = this.root;
    return fetch(root.getAttribute("data-charts-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (payload) {
        self.payload = payload;
        self.range = payload.specs.main.usermeta.default_range;
        var total = Object.keys(payload.counts).reduce(function (s, k) { return s + payload.counts[k]; }, 0);
        if (!total) {
          root.querySelector(".chart-status").textContent = gettext("Nothing to chart yet.");
          root.setAttribute("data-charts-ready", "empty");
          return null;
        }
        var note = root.querySelector("[data-chart-note]");
        if (note && payload.note) { note.textContent = payload.note; note.hidden = false; }
        var exposure = root.querySelector("[data-exposure]");
        if (exposure) { buildExposure(exposure, payload.exposure); }
        var more = root.querySelector("[data-chart-on-demand]");
        if (more && payload.specs[more.getAttribute("data-chart-on-demand")]) {
          more.hidden = false;
          more.addEventListener("toggle", function () {
            var key = more.getAttribute("data-chart-on-demand");
            if (more.open && !self.views[key]) {
              self.render(key).then(function () { root.setAttribute("data-" + key + "-ready", "1"); });
            }
          });
        }
        root.querySelectorAll("[data-range]").forEach(function (b) {
          b.addEventListener("click", function () { self.setRange(b.getAttribute("data-range")); });
        });
        var toggle = root.querySelector("[data-table-toggle]");
        var tables = root.querySelector("[data-tables]");
        toggle.addEventListener("click", function () {
          if (!tables.childElementCount) { buildTables(tables, payload.tables); }
          tables.hidden = !tables.hidden;
          toggle.setAttribute("aria-expanded", tables.hidden ? "false" : "true");
          toggle.textContent = tables.hidden ? gettext("Table view") : gettext("Hide table");
        });
        self.width = root.clientWidth;
        var timer = null;
        window.addEventListener("resize", function () {
          clearTimeout(timer);
          timer = setTimeout(function () {
            if (Math.abs(root.clientWidth - self.width) < 8) { return; }
            self.width = root.clientWidth;
            Object.keys(self.views).forEach(function (key) { self.render(key, true); });
          }, 200);
        });
        return self.render("main").then(function () {
          self.setRange(self.range);
          root.setAttribute("data-charts-ready", "1");
        });
      })
      .catch(function (err) {
        var status = root.querySelector(".chart-status");
        if (status) { status.textContent = interpolate(gettext("The charts could not be loaded (%(error)s). The table view and timeline still list every entry."), { error: err.message }, true); }
        root.setAttribute("data-charts-ready", "error");
      });
  };

  document.querySelectorAll("[data-charts-src]").forEach(function (root) {
    var c = new Charts(root);
    instances.push(c);
    c.start();
  });
})();

// The impact map: an impact answer drawn with Cytoscape.js and laid out with dagre, left to right
// (the failed CIs on the left, the business services on the right). Every .map-frame on the page is
// one map; its elements come from a JSON block on the page (data-json) or from the server (data-src).
// The table on the full page is the map's text alternative; everything here only adds to it.
// For tests and the benchmark: window.cairnMap is the Cytoscape instance of the last map drawn,
// window.cairnMapReady the time (performance.now()) it was drawn and interactive, and each expand of a
// group sets window.cairnMapExpanded to the milliseconds it took.
(function () {
  "use strict";

  var STYLE = [
    { selector: "node", style: {
      "shape": "round-rectangle", "width": 150, "height": 44, "label": "data(label)", "text-wrap": "wrap",
      "text-max-width": 140, "text-valign": "center", "text-halign": "center", "font-size": 11,
      "font-family": "system-ui, DejaVu Sans, sans-serif", "color": "#1d2330", "background-color": "#ffffff",
      "border-width": 2, "border-color": "#8a93a3" } },
    { selector: "node.down", style: { "background-color": "#fde6e6", "border-color": "#a61b1b" } },
    { selector: "node.degraded", style: { "background-color": "#fff1da", "border-color": "#b86e00", "border-style": "dashed" } },
    { selector: "node.failed", style: { "background-color": "#7a0f0f", "border-color": "#4a0000", "color": "#ffffff", "font-weight": "bold" } },
    { selector: "node.service", style: { "shape": "hexagon", "width": 170, "height": 52, "border-width": 4, "border-color": "#1f4f8f", "border-style": "solid" } },
    { selector: "node.cluster", style: { "shape": "barrel", "height": 52 } },
    { selector: "node.incident", style: { "outline-width": 3, "outline-color": "#d0021b", "outline-offset": 2 } },
    { selector: "node.alerting", style: { "underlay-color": "#ff6a00", "underlay-opacity": 0.45, "underlay-padding": 7, "underlay-shape": "round-rectangle" } },
    { selector: "node.group", style: { "shape": "round-rectangle", "width": 180, "height": 56, "background-color": "#eef2f8", "border-color": "#5a6372", "border-width": 2, "border-style": "double", "font-weight": "bold" } },
    { selector: "node.group.down", style: { "background-color": "#fbe3e3" } },
    { selector: "node.group.degraded", style: { "background-color": "#fff4e0" } },
    { selector: ":parent", style: { "shape": "round-rectangle", "background-opacity": 0.35, "padding": 14, "text-valign": "top", "text-halign": "center", "text-margin-y": -4, "border-style": "solid" } },
    { selector: "node.more", style: { "shape": "round-rectangle", "background-color": "#f3f5f9", "border-style": "dotted", "color": "#5a6372" } },
    { selector: "edge", style: {
      "width": 1.5, "line-color": "#9aa3b2", "target-arrow-color": "#9aa3b2", "target-arrow-shape": "triangle",
      "curve-style": "bezier", "arrow-scale": 0.9, "label": "data(label)", "font-size": 9, "color": "#5a6372",
      "text-background-color": "#ffffff", "text-background-opacity": 0.85, "text-background-padding": 1 } },
    { selector: "node.proxy", style: { "opacity": 0, "label": "" } },
    { selector: ".faded", style: { "opacity": 0.22 } },
    { selector: "node.on-path", style: { "border-color": "#f0a500", "border-width": 5, "opacity": 1, "z-index": 10 } },
    { selector: "edge.on-path", style: { "line-color": "#e08a00", "target-arrow-color": "#e08a00", "width": 4, "opacity": 1, "z-index": 10 } },
    { selector: "node.spof", style: { "outline-width": 5, "outline-color": "#5b2a86", "outline-offset": 3, "opacity": 1 } },
    { selector: "node:selected", style: { "overlay-color": "#1f4f8f", "overlay-opacity": 0.12, "overlay-padding": 6 } }
  ];

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function link(href, text) {
    var a = el("a", text);
    a.href = href;
    return a;
  }

  function withParam(url, name, value) {
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + encodeURIComponent(name) + "=" + encodeURIComponent(value);
  }

  var CELL_W = 160, CELL_H = 56;

  // Dagre lays out the graph left to right. An expanded group (a compound node) would make dagre stack
  // its CIs in one tall column, so each one stands in the layout as one box the size of a grid of its
  // CIs (with the group's edges), and its CIs are then placed in that grid.
  function runLayout(cy, done) {
    var temps = cy.collection();
    var proxyOf = {};
    var seen = {};
    cy.batch(function () {
      cy.nodes(":parent").forEach(function (group) {
        var n = group.children().length;
        var cols = Math.max(1, Math.ceil(Math.sqrt(n * CELL_H / CELL_W * 1.6)));
        var rows = Math.ceil(n / cols);
        var proxy = cy.add({ group: "nodes", data: { id: group.id() + "--proxy", kind: "proxy" }, classes: "proxy" });
        proxy.style({ width: cols * CELL_W, height: rows * CELL_H + 24 });
        proxyOf[group.id()] = proxy;
        group.children().forEach(function (child) { proxyOf[child.id()] = proxy; });
        temps = temps.union(proxy);
      });
      cy.edges().forEach(function (edge) {
        var s = proxyOf[edge.source().id()], t = proxyOf[edge.target().id()];
        if (!s && !t) return;
        var source = s ? s.id() : edge.source().id(), target = t ? t.id() : edge.target().id();
        var key = "tmp-" + source + ">" + target;
        if (source === target || seen[key]) return;
        seen[key] = true;
        temps = temps.union(cy.add({ group: "edges", data: { id: key, source: source, target: target } }));
      });
    });
    var eles = cy.elements().filter(function (e) {
      if (e.isNode()) return !e.isParent() && !e.isChild();
      if (e.id().indexOf("tmp-") === 0) return true;
      return !proxyOf[e.source().id()] && !proxyOf[e.target().id()];
    });
    var layout = eles.layout({
      name: "dagre", rankDir: "LR", nodeSep: 14, rankSep: 70, edgeSep: 6, padding: 16, fit: false, animate: false
    });
    layout.one("layoutstop", function () {
      cy.batch(function () {
        cy.nodes(":parent").forEach(function (group) {
          var proxy = proxyOf[group.id()];
          var box = proxy.position();
          var width = proxy.width(), height = proxy.height();
          var cols = Math.max(1, Math.round(width / CELL_W));
          group.children().forEach(function (child, i) {
            child.position({
              x: box.x - width / 2 + CELL_W / 2 + (i % cols) * CELL_W,
              y: box.y - height / 2 + 24 + CELL_H / 2 + Math.floor(i / cols) * CELL_H
            });
          });
        });
        cy.remove(temps);
      });
      fitView(cy);
      if (done) done();
    });
    layout.run();
  }

  // Fit the map (or some of it) in view, never larger than life: a small map stays readable.
  function fitView(cy, eles, padding) {
    cy.fit(eles, padding || 16);
    if (cy.zoom() > 1.2) cy.zoom({ level: 1.2, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
    if (!eles) cy.center();
  }

  function MapView(frame) {
    this.frame = frame;
    this.canvas = frame.querySelector(".map-canvas");
    this.details = frame.querySelector(".map-details");
    this.status = frame.querySelector(".map-status");
    this.selected = null;
    this.data = null;
  }

  MapView.prototype.load = function () {
    var self = this;
    var inline = this.frame.getAttribute("data-json");
    var block = inline ? document.getElementById(inline) : null;
    if (block) {
      this.start(JSON.parse(block.textContent));
      return;
    }
    fetch(this.frame.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) { self.start(data); })
      .catch(function () {
        self.status.textContent = self.frame.getAttribute("data-failed") || "The map could not be drawn; the full map page has the table.";
        self.frame.classList.add("failed");
      });
  };

  MapView.prototype.start = function (data) {
    var self = this;
    this.data = data;
    this.labels = data.labels || {};
    this.status.textContent = data.count === 0 ? this.labels.nothing || "" : "";
    this.frame.classList.toggle("empty", data.count === 0);
    var cy = cytoscape({
      container: this.canvas, elements: data.elements, style: STYLE, minZoom: 0.05, maxZoom: 2.5,
      boxSelectionEnabled: false, autoungrabify: false, selectionType: "single"
    });
    this.cy = cy;
    window.cairnMap = cy;
    this.frame.cairnMap = cy;
    (data.spof || []).forEach(function (id) { cy.getElementById(id).addClass("spof"); });
    cy.on("tap", "node", function (event) { self.tap(event.target); });
    cy.on("mouseover", "node", function (event) { if (!self.selected) self.show(event.target); });
    cy.on("tap", function (event) { if (event.target === cy) self.clear(); });
    var tools = this.frame.querySelector(".map-tools");
    if (tools) {
      tools.hidden = false;
      tools.addEventListener("click", function (event) {
        var what = event.target.getAttribute && event.target.getAttribute("data-map");
        if (what === "fit") fitView(cy);
        if (what === "clear") self.clear();
      });
    }
    var resizing = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizing);
      resizing = setTimeout(function () {
        cy.resize();
        fitView(cy);
      }, 150);
    });
    var png = document.getElementById("map-png");
    if (png) {
      png.addEventListener("click", function () {
        png.href = cy.png({ full: true, scale: 2, bg: "#ffffff", output: "base64uri" });
      });
    }
    runLayout(cy, function () {
      if (data.highlight && data.highlight.length) self.highlight(data.highlight);
      self.frame.setAttribute("data-ready", "1");
      window.cairnMapReady = performance.now();
      self.frame.dispatchEvent(new CustomEvent("cairn:map-ready", { bubbles: true }));
    });
  };

  MapView.prototype.clear = function () {
    this.selected = null;
    this.cy.elements().removeClass("faded on-path");
    this.frame.removeAttribute("data-path");
  };

  MapView.prototype.highlight = function (ids) {
    var cy = this.cy;
    var nodes = cy.collection();
    ids.forEach(function (id) {
      if (!id) return;
      var n = cy.getElementById(id);
      if (n.nonempty()) nodes = nodes.union(n);
    });
    var edges = cy.collection();
    for (var i = 1; i < ids.length; i++) {
      var a = ids[i - 1] && cy.getElementById(ids[i - 1]);
      var b = ids[i] && cy.getElementById(ids[i]);
      if (a && b && a.nonempty() && b.nonempty()) edges = edges.union(a.edgesWith(b));
    }
    cy.elements().removeClass("on-path").addClass("faded");
    nodes.union(edges).removeClass("faded").addClass("on-path");
    this.frame.setAttribute("data-path", ids.filter(Boolean).join(" "));
  };

  MapView.prototype.tap = function (node) {
    var data = node.data();
    if (data.kind === "group") {
      if (!node.hasClass("expanded")) this.expand(node);
      this.showGroup(node);
      return;
    }
    if (data.kind !== "ci") return;
    this.selected = node;
    this.highlight(data.path || [data.id]);
    this.show(node);
    var onPath = this.cy.elements(".on-path");
    if (onPath.length > 1) {
      fitView(this.cy, onPath, 40);
    }
  };

  MapView.prototype.showGroup = function (node) {
    var d = node.data();
    var box = this.details;
    box.replaceChildren();
    box.appendChild(el("h3", d.name));
    box.appendChild(el("p", d.label.split("\n").slice(1).join(" ")));
    box.appendChild(el("p", node.hasClass("expanded") ? "" : this.labels.group_help, "muted"));
  };

  MapView.prototype.show = function (node) {
    var d = node.data();
    var L = this.labels;
    if (d.kind === "group") { this.showGroup(node); return; }
    if (d.kind !== "ci") return;
    var box = this.details;
    box.replaceChildren();
    box.appendChild(el("h3", d.name));
    var dl = el("dl", null, "facts");
    function fact(term, value, cls) {
      dl.appendChild(el("dt", term));
      dl.appendChild(el("dd", value, cls));
    }
    fact(L.class, d.class_label);
    fact(L.team, d.team || L.no_team);
    dl.appendChild(el("dt", L.state));
    var stateCell = el("dd");
    stateCell.appendChild(el("span", d.state_label, "badge impact-" + d.state));
    dl.appendChild(stateCell);
    fact(L.criticality, d.criticality);
    fact(L.hops, d.depth);
    if (d.cluster) fact(L.members, d.cluster.up + " / " + d.cluster.members + " (≥ " + d.cluster.min_up + ")");
    box.appendChild(dl);
    if (d.state === "failed") {
      box.appendChild(el("p", L.failed_root, "muted"));
    } else {
      box.appendChild(el("h4", L.why));
      var ol = el("ol", null, "why-path");
      (d.why || []).forEach(function (name) { ol.appendChild(el("li", name)); });
      box.appendChild(ol);
    }
    box.appendChild(el("h4", L.tickets));
    if (d.tickets && d.tickets.length) {
      var ul = el("ul", null, "plain");
      d.tickets.forEach(function (t) {
        var li = el("li");
        li.appendChild(link(t.url, t.number));
        li.appendChild(document.createTextNode(" " + t.title));
        ul.appendChild(li);
      });
      if (d.more_tickets) ul.appendChild(el("li", (L.more_tickets || "").replace("{n}", d.more_tickets), "muted"));
      box.appendChild(ul);
    } else {
      box.appendChild(el("p", L.none, "muted"));
    }
    var actions = el("ul", null, "plain map-actions");
    var page = this.data.page_url;
    function action(href, text) {
      var li = el("li");
      li.appendChild(link(href, text));
      actions.appendChild(li);
    }
    action(d.url, L.open);
    if (d.state !== "failed") {
      action(withParam(page, "ci", d.ci_id), L.what_if);
      var root = (this.data.roots || [])[0];
      if (root) action(withParam(withParam(page, "from", root), "to", d.ci_id) + "#path", L.path_here);
    }
    if (d.service) action(withParam(page, "spof", d.ci_id) + "#spof", L.spof);
    box.appendChild(actions);
  };

  MapView.prototype.expand = function (node) {
    var self = this;
    var cy = this.cy;
    var started = performance.now();
    var d = node.data();
    node.addClass("expanded");
    this.status.textContent = this.labels.expanding || "";
    fetch(withParam(this.data.expand_url, "key", d.key), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (answer) {
        var fetched = performance.now();
        cy.batch(function () {
          cy.add(answer.elements.nodes);
          if (answer.more > 0) {
            cy.add({ group: "nodes", classes: "more", data: {
              id: answer.group + "-more", kind: "more", parent: answer.group,
              label: (self.labels.more || "").replace("{n}", answer.more.toLocaleString()) } });
          }
          answer.elements.edges.forEach(function (edge) {
            var s = cy.getElementById(edge.data.source), t = cy.getElementById(edge.data.target);
            if (s.nonempty() && t.nonempty() && cy.getElementById(edge.data.id).empty()) cy.add(edge);
          });
        });
        var added = performance.now();
        runLayout(cy, function () {
          self.status.textContent = "";
          window.cairnMapExpanded = performance.now() - started;
          window.cairnMapExpandSteps = { fetch: fetched - started, add: added - fetched, layout: performance.now() - added };
          self.frame.dispatchEvent(new CustomEvent("cairn:map-expanded", { bubbles: true, detail: { group: answer.group } }));
        });
      })
      .catch(function () {
        node.removeClass("expanded");
        self.status.textContent = "";
      });
  };

  function init() {
    if (typeof cytoscape === "undefined") return;
    document.querySelectorAll(".map-frame").forEach(function (frame) {
      new MapView(frame).load();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

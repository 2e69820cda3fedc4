// seawall dashboard: one tile per instance name, fed by Server-Sent Events (no polling).
// Every name is put in the page with textContent or dataset, never as markup.
"use strict";

(function () {
  const body = document.body;
  const base = body.dataset.base;
  const registry = body.dataset.registry;
  const actionsOn = body.dataset.actions === "on";
  const root = base + "/registries/" + encodeURIComponent(registry);
  const container = document.getElementById("tiles");
  const connection = document.getElementById("connection");
  const tiles = new Map();

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : value.toFixed(1) + " %";
  }

  function perSecond(value) {
    return value === null || value === undefined ? "–" : value.toFixed(1) + "/s";
  }

  function bar(rate, threshold) {
    const outer = el("div", "bar");
    const fill = el("div", "fill");
    const value = rate === null || rate === undefined ? 0 : rate;
    fill.style.width = Math.min(100, Math.max(0, value)) + "%";
    if (value >= threshold) fill.classList.add("over");
    const mark = el("div", "mark");
    mark.style.left = Math.min(100, Math.max(0, threshold)) + "%";
    mark.title = "threshold " + threshold + " %";
    outer.append(fill, mark);
    return outer;
  }

  function row(list, label, value, extra) {
    const dd = el("dd", null, value);
    if (extra) dd.append(extra);
    list.append(el("dt", null, label), dd);
  }

  function tileFor(name) {
    let tile = tiles.get(name);
    if (!tile) {
      tile = el("section", "tile");
      tile.dataset.name = name;
      tiles.set(name, tile);
      const sorted = Array.from(tiles.keys()).sort();
      const next = sorted[sorted.indexOf(name) + 1];
      container.insertBefore(tile, next === undefined ? null : tiles.get(next));
    }
    return tile;
  }

  function setState(tile, state) {
    tile.dataset.state = state;
    const badge = tile.querySelector(".state");
    if (badge) badge.textContent = state;
  }

  function render(t) {
    const tile = tileFor(t.name);
    tile.replaceChildren();
    const head = el("h2");
    head.append(el("span", "name", t.name));
    tile.append(head, el("div", "kinds", t.kinds.join(" · ")));
    const list = el("dl");
    if (t.breaker) {
      const b = t.breaker;
      tile.append(el("span", "state", b.state));
      setState(tile, b.state);
      row(list, "failure rate", percent(b.failureRate) + " / " + b.failureRateThreshold + " %",
        bar(b.failureRate, b.failureRateThreshold));
      row(list, "slow rate", percent(b.slowCallRate) + " / " + b.slowCallRateThreshold + " %",
        bar(b.slowCallRate, b.slowCallRateThreshold));
      row(list, "calls", perSecond(b.callsPerSecond));
      row(list, "rejections", perSecond(b.rejectionsPerSecond) + " (" + b.notPermittedCalls + " in this state)");
      row(list, "in window", String(b.bufferedCalls));
    } else {
      tile.dataset.state = "NONE";
    }
    if (t.bulkhead) {
      const h = t.bulkhead;
      row(list, "bulkhead", h.inUse + " / " + h.maxConcurrentCalls + " in use",
        bar(100 * h.inUse / Math.max(1, h.maxConcurrentCalls), 100));
      row(list, "bulkhead rejected", String(h.rejectedCalls));
    }
    if (t.adaptive) {
      row(list, "adaptive limit", t.adaptive.inflight + " / " + t.adaptive.limit + " in flight");
      row(list, "limit rejected", String(t.adaptive.rejectedCalls));
    }
    if (t.rateLimiter) {
      row(list, "rate permits", String(t.rateLimiter.availablePermits) + " left, " +
        t.rateLimiter.waitingCalls + " waiting");
      row(list, "rate rejected", String(t.rateLimiter.rejectedCalls));
    }
    tile.append(list);
    if (actionsOn && t.breaker) tile.append(actionsFor(t.name, t.breaker));
  }

  function actionsFor(name, breaker) {
    const box = el("div", "actions");
    const send = function (change) {
      const token = document.getElementById("token").value;
      const result = document.getElementById("action-result");
      fetch(root + "/circuit-breakers/" + encodeURIComponent(name), {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token },
        body: JSON.stringify(change),
      }).then(function (response) {
        return response.json().then(function (answer) {
          result.textContent = response.ok ? name + ": done" : name + ": " + answer.message;
        });
      }).catch(function (error) { result.textContent = String(error); });
    };
    const open = el("button", null, "Force open");
    open.type = "button";
    open.addEventListener("click", function () { send({ state: "FORCED_OPEN" }); });
    const close = el("button", null, "Close");
    close.type = "button";
    close.addEventListener("click", function () { send({ state: "CLOSED" }); });
    const threshold = el("input");
    threshold.type = "number";
    threshold.min = "1";
    threshold.max = "100";
    threshold.value = String(breaker.failureRateThreshold);
    threshold.title = "failure rate threshold, %";
    const apply = el("button", null, "Set threshold");
    apply.type = "button";
    apply.addEventListener("click", function () {
      send({ failureRateThreshold: Number(threshold.value) });
    });
    box.append(open, close, threshold, apply);
    return box;
  }

  function applySnapshot(snapshot) {
    const seen = new Set();
    for (const t of snapshot.tiles) {
      seen.add(t.name);
      render(t);
    }
    for (const [name, tile] of tiles) {
      if (!seen.has(name)) {
        tile.remove();
        tiles.delete(name);
      }
    }
  }

  if (actionsOn) document.getElementById("operator").hidden = false;

  // EventSource reconnects by itself; the server sends a full snapshot on every connection.
  const source = new EventSource(root + "/events");
  source.addEventListener("open", function () {
    connection.dataset.connection = "live";
    connection.textContent = "live";
  });
  source.addEventListener("error", function () {
    connection.dataset.connection = "lost";
    connection.textContent = "reconnecting…";
  });
  source.addEventListener("snapshot", function (event) {
    applySnapshot(JSON.parse(event.data));
  });
  source.addEventListener("state", function (event) {
    const push = JSON.parse(event.data);
    const tile = tiles.get(push.name);
    if (tile) setState(tile, push.to);
  });
})();

// The segue console: plain JavaScript over the /v1 API of the server that serves this page.
// Pages are hash routes (#/track/<id>, #/station/<id>, ...); every DOM node is built with `h`,
// never from HTML strings, so names and ids from the catalogue are shown as text.
"use strict";

(() => {
  const store = window.sessionStorage;
  const KEYS = { token: "segue.token", listener: "segue.listener", seeds: "segue.seeds" };
  const main = document.getElementById("main");
  const errorBox = document.getElementById("error");
  const announcer = document.getElementById("announce");

  // ---------- small helpers ----------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // Icons as inline SVG (Material Design icons' paths, Apache-2.0): an emoji needs an emoji
  // font, which many desktops and headless browsers lack.
  const ICONS = {
    up: "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z",
    down: "M15 3H6c-.83 0-1.54.5-1.84 1.22l-3.02 7.05c-.09.23-.14.47-.14.73v2c0 1.1.9 2 2 2h6.31l-.95 4.57-.03.32c0 .41.17.79.44 1.06L9.83 23l6.59-6.59c.36-.36.58-.86.58-1.41V5c0-1.1-.9-2-2-2zm4 0v12h4V3h-4z",
    skip: "M6 18l8.5-6L6 6v12zM16 6v12h2V6h-2z",
    done: "M9 16.17L4.83 12l-1.42 1.41L9 19 21 7l-1.41-1.41z",
    play: "M8 5v14l11-7z",
  };

  function icon(name) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
    svg.append(path);
    return svg;
  }

  const enc = encodeURIComponent;
  const trackHref = (id) => `#/track/${enc(id)}`;
  const artistHref = (id) => `#/artist/${enc(id)}`;
  const stationHref = (id) => `#/station/${enc(id)}`;

  function announce(text) {
    announcer.textContent = "";
    window.setTimeout(() => { announcer.textContent = text; }, 50);
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function eventId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    return `ev-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
  }

  function fmtScore(x) { return typeof x === "number" ? x.toFixed(3) : "—"; }
  function fmtInt(x) { return typeof x === "number" ? x.toLocaleString("en") : "—"; }
  function fmtDate(iso, withTime) {  // "2026-04-01T00:32:48Z" -> "2026-04-01 00:32 UTC"
    if (!iso) return "unknown";
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
    if (!m) return iso;
    return withTime === false ? m[1] : `${m[1]} ${m[2]} UTC`;
  }
  function fmtAge(seconds) {
    if (typeof seconds !== "number") return "unknown";
    if (seconds < 90) return `${Math.round(seconds)} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
    return `${(seconds / 86400).toFixed(1)} days`;
  }

  // ---------- the API ----------

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(path, options) {
    const opts = options || {};
    const headers = { accept: "application/json" };
    const token = store.getItem(KEYS.token);
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method: opts.method || "GET",
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
    } catch (e) {
      throw new ApiError(0, `the server did not answer (${e.message})`);
    }
    const version = response.headers.get("x-bundle-version");
    if (version) document.getElementById("foot-version").textContent = `bundle ${version}`;
    if (response.status === 204) return null;
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok) {
      let detail = data && data.detail !== undefined ? data.detail : text || response.statusText;
      if (typeof detail !== "string") detail = JSON.stringify(detail);
      if (response.status === 401) detail += " — paste an API token under Settings";
      if (response.status === 403) detail += " — the token lacks a scope this needs (Ops: admin)";
      const retry = response.headers.get("retry-after");
      if (retry) detail += ` (try again in ${retry} s)`;
      throw new ApiError(response.status, `${response.status}: ${detail}`);
    }
    return data;
  }

  // ---------- settings, seeds ----------

  function listener() { return store.getItem(KEYS.listener) || "u0001"; }

  // The user a bearer JWT speaks for (its `sub`), read without checking the signature (the
  // server checks it): stations are created for that user. Null for anything else.
  function tokenSubject(token) {
    const part = (token || "").split(".")[1];
    if (!part) return null;
    try {
      const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
      const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))));
      return typeof claims.sub === "string" && claims.sub ? claims.sub : null;
    } catch (e) {
      return null;
    }
  }

  function seeds() {
    try { return JSON.parse(store.getItem(KEYS.seeds) || "[]"); } catch (e) { return []; }
  }

  function saveSeeds(list) { store.setItem(KEYS.seeds, JSON.stringify(list)); }

  function addSeed(kind, id, name) {
    const list = seeds();
    if (!list.some((s) => s.kind === kind && s.id === id)) list.push({ kind, id, name });
    saveSeeds(list.slice(0, 20));
    announce(`${name} added to the station seeds (${list.length} in all)`);
  }

  function setUpSettings() {
    const form = document.getElementById("settings-form");
    const token = document.getElementById("token");
    const who = document.getElementById("listener");
    token.value = store.getItem(KEYS.token) || "";
    who.value = listener();
    token.addEventListener("change", () => {  // a token's user is the listener it acts for
      const sub = tokenSubject(token.value.trim());
      if (sub) who.value = sub;
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (token.value.trim()) store.setItem(KEYS.token, token.value.trim());
      else store.removeItem(KEYS.token);
      const sub = tokenSubject(token.value.trim());
      if (sub && !who.value.trim()) who.value = sub;
      if (who.value.trim()) store.setItem(KEYS.listener, who.value.trim());
      announce(sub ? `Settings saved: signed in as ${sub}` : "Settings saved");
      form.closest("details").open = false;
      route();
    });
  }

  async function startStation(body) {
    const station = await api("/v1/stations", {
      method: "POST",
      body: { user_id: listener(), ...body },
    });
    window.location.hash = stationHref(station.id);
  }

  // ---------- shared pieces ----------

  function page(title, ...children) {
    main.replaceChildren(h("h1", { id: "page-title", tabindex: "-1" }, title), ...children);
  }

  function section(title, id, ...children) {
    return h("section", { class: "card", "aria-labelledby": id },
      h("h2", { id }, title), ...children);
  }

  function trackLine(t, extra) {
    return h("span", { class: "track-line" },
      h("a", { class: "track-name", href: trackHref(t.id) }, t.name),
      h("span", { class: "by" }, " by "),
      h("a", { class: "artist-name", href: artistHref(t.artist.id) }, t.artist.name),
      extra || null);
  }

  function button(label, onclick, attrs) {
    return h("button", { type: "button", onclick, ...(attrs || {}) }, label);
  }

  function guarded(fn) {
    return async (...args) => {
      showError("");
      try { await fn(...args); } catch (e) { showError(e.message); }
    };
  }

  function loading() { main.setAttribute("aria-busy", "true"); }

  function focusTitle() {
    main.removeAttribute("aria-busy");
    const t = document.getElementById("page-title");
    if (t) t.focus({ preventScroll: true });
  }

  // ---------- search ----------

  async function searchPage(params) {
    const q = params.get("q") || "";
    const input = h("input", { id: "q", name: "q", type: "search", value: q, autocomplete: "off",
      placeholder: "a title or an artist, e.g. night" });
    const form = h("form", { class: "search", role: "search", onsubmit: (e) => {
      e.preventDefault();
      window.location.hash = `#/?q=${enc(input.value.trim())}`;
    } }, h("label", { for: "q" }, "Search tracks and artists"),
    h("div", { class: "search-row" }, input, h("button", { type: "submit" }, "Search")));
    const results = h("div", { class: "results" });
    page("Find a seed", form, results);
    if (!q) input.focus();
    const [artists, tracks] = await Promise.all([
      api(`/v1/artists?q=${enc(q)}&limit=8`), api(`/v1/tracks?q=${enc(q)}&limit=20`)]);
    const label = q ? `for “${q}”` : "most listened";
    results.replaceChildren(
      section(`Artists ${label}`, "artists-h",
        artists.items.length ? h("ul", { class: "chips", id: "artist-results" }, artists.items.map((a) =>
          h("li", {}, h("a", { class: "chip", href: artistHref(a.id) }, a.name,
            h("span", { class: "muted" }, ` ${fmtInt(a.listeners)} listeners`)))))
          : h("p", { class: "muted" }, "No artist matches.")),
      section(`Tracks ${label}`, "tracks-h",
        tracks.items.length ? h("ol", { class: "rows", id: "track-results" }, tracks.items.map((t) =>
          h("li", { class: "row" }, trackLine(t),
            h("span", { class: "muted num" }, `${fmtInt(t.listeners)} listeners`),
            h("span", { class: "actions" },
              button("+ Seed", () => addSeed("track", t.id, t.name),
                { "aria-label": `Add ${t.name} to the station seeds` }),
              button("▶ Station", guarded(() => startStation({ tracks: [t.id] })),
                { "aria-label": `Start a station from ${t.name}` })))))
          : h("p", { class: "muted" }, "No track matches.")));
    announce(`${artists.items.length} artists and ${tracks.items.length} tracks`);
    if (q) focusTitle(); else main.removeAttribute("aria-busy");
  }

  // ---------- track ----------

  async function trackPage(id) {
    const [track, similar, radio] = await Promise.all([
      api(`/v1/tracks/${enc(id)}`),
      api(`/v1/tracks/${enc(id)}/similar?limit=15&explain=true`),
      api(`/v1/tracks/${enc(id)}/radio-neighbours?limit=15`),
    ]);
    const head = h("div", { class: "card hero" },
      h("p", { class: "eyebrow" }, "Track"),
      h("p", { class: "hero-sub" }, "by ", h("a", { href: artistHref(track.artist.id) }, track.artist.name),
        ` · ${fmtInt(track.listeners)} listeners · id ${track.id}`),
      h("div", { class: "actions" },
        button("▶ Start a station from this track", guarded(() => startStation({ tracks: [track.id] })),
          { id: "start-station", class: "primary" }),
        button("+ Add to seeds", () => addSeed("track", track.id, track.name))));
    const simList = h("ol", { class: "rows", id: "similar" }, similar.items.map((t) =>
      h("li", { class: "row" }, trackLine(t),
        h("span", { class: "score num", title: "ensemble score" }, fmtScore(t.score)),
        h("span", { class: "sources", "aria-label": "sources that put it there" },
          (t.sources || []).length ? t.sources.map((s) => h("span", { class: `tag src-${s.split("_")[0]}` }, s))
            : h("span", { class: "muted" }, "deeper in one list")))));
    const radioList = h("ol", { class: "rows", id: "radio" }, radio.items.map((t) =>
      h("li", { class: "row" }, trackLine(t), h("span", { class: "score num" }, fmtScore(t.score)))));
    page(track.name, head,
      h("div", { class: "grid2" },
        section("Similar tracks", "similar-h",
          h("p", { class: "muted" }, "Score from the ensemble; tags: the candidate sources (models and signals) whose own list held the track."),
          simList),
        section("Radio neighbours", "radio-h",
          h("p", { class: "muted" }, `The track's radio list (${radio.source === "cache" ? "from the store's cache" : "computed now and written back"}); a station from it shuffles these.`),
          radioList)));
    focusTitle();
  }

  // ---------- artist ----------

  async function artistPage(id) {
    const artist = await api(`/v1/artists/${enc(id)}`);
    const [related, tracks] = await Promise.all([
      api(`/v1/artists/${enc(id)}/related?limit=20`),
      api(`/v1/tracks?q=${enc(artist.name)}&limit=50`),
    ]);
    const own = tracks.items.filter((t) => t.artist.id === artist.id).slice(0, 10);
    page(artist.name,
      h("div", { class: "card hero" },
        h("p", { class: "eyebrow" }, "Artist"),
        h("p", { class: "hero-sub" }, `${fmtInt(artist.listeners)} listeners · id ${artist.id}`),
        h("div", { class: "actions" },
          button("▶ Start a station from this artist", guarded(() => startStation({ artists: [artist.id] })),
            { class: "primary" }),
          button("+ Add to seeds", () => addSeed("artist", artist.id, artist.name)))),
      h("div", { class: "grid2" },
        section("Related artists", "related-h",
          h("ol", { class: "rows", id: "related" }, related.items.map((a) =>
            h("li", { class: "row" }, h("a", { href: artistHref(a.id) }, a.name),
              h("span", { class: "muted num" }, `${fmtInt(a.listeners)} listeners`),
              h("span", { class: "score num" }, fmtScore(a.score)))))),
        section("Most listened tracks", "own-h",
          own.length ? h("ol", { class: "rows" }, own.map((t) =>
            h("li", { class: "row" }, h("a", { href: trackHref(t.id) }, t.name),
              h("span", { class: "muted num" }, `${fmtInt(t.listeners)} listeners`))))
            : h("p", { class: "muted" }, "None found by name."))));
    focusTitle();
  }

  // ---------- listener ----------

  async function userPage(id) {
    const input = h("input", { id: "user-id", name: "user", value: id || listener(), autocomplete: "off" });
    const form = h("form", { class: "search", onsubmit: (e) => {
      e.preventDefault();
      window.location.hash = `#/user/${enc(input.value.trim())}`;
    } }, h("label", { for: "user-id" }, "Listener id"),
    h("div", { class: "search-row" }, input, h("button", { type: "submit" }, "Recommend")));
    page("Recommendations for a listener", form);
    if (!id) { focusTitle(); return; }
    const recs = await api(`/v1/users/${enc(id)}/recommendations?limit=20`);
    main.append(section(`For ${recs.user}`, "recs-h",
      h("ol", { class: "rows", id: "recommendations" }, recs.items.map((t) =>
        h("li", { class: "row" }, trackLine(t),
          h("span", { class: "score num" }, fmtScore(t.score)),
          h("span", { class: "reason" }, t.reason))))));
    focusTitle();
  }

  // ---------- stations ----------

  function newStationPage() {
    const list = seeds();
    const tray = h("ul", { class: "chips", id: "seed-tray" }, list.map((s, i) =>
      h("li", {}, h("span", { class: "chip" }, `${s.kind === "artist" ? "Artist" : "Track"}: ${s.name}`,
        button("✕", () => { const l = seeds(); l.splice(i, 1); saveSeeds(l); route(); },
          { class: "chip-x", "aria-label": `Remove ${s.name} from the seeds` })))));
    const start = button("▶ Start the station", guarded(() => startStation({
      tracks: list.filter((s) => s.kind === "track").map((s) => s.id),
      artists: list.filter((s) => s.kind === "artist").map((s) => s.id),
    })), { class: "primary", disabled: list.length === 0 });
    const resume = h("input", { id: "station-id", autocomplete: "off", spellcheck: "false" });
    page("Start a station",
      section("Seeds", "seeds-h",
        list.length ? tray : h("p", { class: "muted" },
          "No seeds yet: search for tracks or artists and press “+ Seed”, or start from one directly."),
        h("div", { class: "actions" }, start,
          list.length ? button("Clear", () => { saveSeeds([]); route(); }) : null),
        h("p", { class: "muted" }, `The station will belong to listener ${listener()} (Settings).`)),
      section("Open a station", "open-h",
        h("form", { class: "search", onsubmit: (e) => {
          e.preventDefault();
          if (resume.value.trim()) window.location.hash = stationHref(resume.value.trim());
        } }, h("label", { for: "station-id" }, "Station id"),
        h("div", { class: "search-row" }, resume, h("button", { type: "submit" }, "Open")))));
    focusTitle();
  }

  // What the player remembers between renders of one station: the queue it last showed, and
  // the names of its seeds (for its title).
  const shown = { station: null, upcoming: [], title: "Station" };

  async function stationPage(id) {
    const view = await api(`/v1/stations/${enc(id)}/queue?limit=10`);
    if (shown.station !== id) {
      const names = await Promise.all(view.station.seeds.slice(0, 3).map((t) =>
        api(`/v1/tracks/${enc(t)}`).then((x) => x.name, () => t)));
      const more = view.station.seeds.length > 3 ? ` +${view.station.seeds.length - 3}` : "";
      shown.title = `Radio: ${names.join(", ")}${more}`;
    }
    renderStation(id, view, { first: shown.station !== id });
    focusTitle();
  }

  function renderStation(id, view, { first }) {
    const focused = main.contains(document.activeElement) ? document.activeElement : null;
    const focusKey = focused && (focused.getAttribute("aria-label") || focused.id);
    drawStation(id, view, { first });
    if (focused) {  // the press re-drew the page: focus the same control again, else the player
      const same = [...main.querySelectorAll("button")].find((b) =>
        (b.getAttribute("aria-label") || b.id) === focusKey);
      (same || document.getElementById("play-next")).focus({ preventScroll: true });
    }
  }

  function drawStation(id, view, { first }) {
    const st = view.station;
    const before = shown.station === id ? shown.upcoming : [];
    const ids = view.upcoming.map((t) => t.id);
    const added = first ? new Set() : new Set(ids.filter((t) => !before.includes(t)));
    const gone = before.filter((t) => !ids.includes(t));
    shown.station = id;
    shown.upcoming = ids;
    const now = view.played[0] || null;
    const feedback = (kind, track, advance) => guarded(async () => {
      await api(`/v1/stations/${enc(id)}/feedback`, {
        method: "POST", body: { event_id: eventId(), track_id: track.id, type: kind } });
      if (advance) await api(`/v1/stations/${enc(id)}/tracks?limit=1`);
      const next = await api(`/v1/stations/${enc(id)}/queue?limit=10`);
      renderStation(id, next, { first: false });
      const label = { thumbs_up: "Thumbs up", thumbs_down: "Thumbs down", skip: "Skipped", completed: "Completed" }[kind];
      announce(`${label}: ${track.name}. ${queueChange(next, ids)}`);
    });
    const playNext = guarded(async () => {
      await api(`/v1/stations/${enc(id)}/tracks?limit=1`);
      const next = await api(`/v1/stations/${enc(id)}/queue?limit=10`);
      renderStation(id, next, { first: false });
      announce(`Now playing ${next.played[0] ? next.played[0].name : "nothing"}. ${queueChange(next, ids)}`);
    });
    const fb = (track, advance) => [
      button(icon("up"), feedback("thumbs_up", track, false), { class: "fb up", "aria-label": `Thumbs up: ${track.name}`, title: "👍 thumbs up" }),
      button(icon("down"), feedback("thumbs_down", track, advance), { class: "fb down", "aria-label": `Thumbs down: ${track.name}`, title: "👎 thumbs down" }),
    ];
    const nowCard = h("section", { class: "card now", "aria-labelledby": "now-h" },
      h("h2", { id: "now-h" }, "Now playing"),
      now ? h("div", { class: "now-track", id: "now-playing", "data-track": now.id },
        h("p", { class: "now-title" }, h("a", { href: trackHref(now.id) }, now.name)),
        h("p", { class: "now-artist" }, h("a", { href: artistHref(now.artist.id) }, now.artist.name)),
        h("div", { class: "actions big" }, ...fb(now, true),
          button([icon("skip"), " Skip"], feedback("skip", now, true), { class: "fb", "aria-label": `Skip: ${now.name}` }),
          button([icon("done"), " Completed"], feedback("completed", now, true), { class: "fb", "aria-label": `Completed: ${now.name}` })))
        : h("p", { class: "muted" }, "Nothing yet: press Play to hear the first track."),
      h("div", { class: "actions" },
        button(now ? "▶ Next track" : "▶ Play", playNext, { class: "primary", id: "play-next" })));
    const queue = h("ol", { class: "rows queue", id: "queue", "aria-describedby": "queue-note" },
      view.upcoming.map((t, i) => h("li", { class: `row${added.has(t.id) ? " new" : ""}`, "data-track": t.id },
        h("span", { class: "pos num", "aria-hidden": "true" }, String(i + 1)), trackLine(t,
          added.has(t.id) ? h("span", { class: "badge" }, "new") : null),
        h("span", { class: "actions" }, ...fb(t, false)))));
    const note = first ? `${view.upcoming.length} tracks up next.`
      : `Queue updated: ${added.size} new, ${gone.length} gone.`;
    const played = h("ol", { class: "rows played", id: "played" }, view.played.slice(1).map((t) =>
      h("li", { class: "row", "data-track": t.id }, trackLine(t), h("span", { class: "actions" }, ...fb(t, false)))));
    const counts = Object.entries(st.events).map(([k, v]) => `${k.replace("_", " ")} ${v}`).join(", ") || "none";
    page(shown.title,
      h("div", { class: "card hero station-meta" },
        h("dl", { class: "facts" },
          h("div", {}, h("dt", {}, "Variant"), h("dd", { id: "variant" }, st.variant)),
          h("div", {}, h("dt", {}, "Bundle"), h("dd", { id: "station-bundle" }, st.bundle_version)),
          h("div", {}, h("dt", {}, "Listener"), h("dd", {}, st.user_id)),
          h("div", {}, h("dt", {}, "Played"), h("dd", { id: "played-count" }, fmtInt(st.played))),
          h("div", {}, h("dt", {}, "Queued"), h("dd", {}, fmtInt(st.queued))),
          h("div", {}, h("dt", {}, "Feedback"), h("dd", { id: "event-counts" }, counts))),
        h("p", { class: "muted small" }, `Station ${st.id} · seeds ${st.seeds.join(", ")}`,
          st.thumbed_down.length ? ` · thumbed down ${st.thumbed_down.length}` : "",
          st.dropped_artists.length ? ` · dropped artists ${st.dropped_artists.join(", ")}` : "")),
      h("div", { class: "grid2" }, nowCard,
        h("section", { class: "card", "aria-labelledby": "queue-h" },
          h("h2", { id: "queue-h" }, "Up next"),
          h("p", { id: "queue-note", class: "muted", "aria-live": "polite" }, note),
          queue)),
      section("Played", "played-h", view.played.length > 1 ? played
        : h("p", { class: "muted" }, "Tracks you have played will show here.")));
  }

  function queueChange(view, beforeIds) {
    const ids = view.upcoming.map((t) => t.id);
    const added = ids.filter((t) => !beforeIds.includes(t)).length;
    return `Up next: ${added} new track${added === 1 ? "" : "s"}.`;
  }

  // ---------- ops ----------

  async function opsPage() {
    const [ops, ready] = await Promise.all([
      api("/v1/ops"),
      fetch("/readyz").then((r) => r.json().then((j) => ({ ...j, code: r.status }))).catch(() => null),
    ]);
    const b = ops.bundle;
    const storeOk = ops.store.state === "ok";
    const bundleCard = b ? section("Bundle", "bundle-h",
      h("dl", { class: "facts wide" },
        h("div", {}, h("dt", {}, "Version"), h("dd", { id: "ops-version" }, b.version)),
        h("div", {}, h("dt", {}, "Format"), h("dd", {}, String(b.format_version))),
        h("div", {}, h("dt", {}, "Built"), h("dd", {}, `${fmtDate(b.created_at)} (${fmtAge(b.age_seconds)} ago)`)),
        h("div", {}, h("dt", {}, "Data"), h("dd", {}, b.source || "unknown")),
        h("div", {}, h("dt", {}, "Catalogue"), h("dd", {},
          Object.entries(b.entities).map(([k, v]) => `${fmtInt(v)} ${k}`).join(" · "))),
        h("div", {}, h("dt", {}, "Time span"), h("dd", { id: "ops-time" }, b.time
          ? `${fmtDate(b.time.first_play, false)} → ${fmtDate(b.time.last_play, false)}, as of ${fmtDate(b.time.as_of)}`
          : "no play times")),
        h("div", {}, h("dt", {}, "Models"), h("dd", {}, b.models.join(", "))),
        h("div", {}, h("dt", {}, "Variants"), h("dd", {}, b.variants.join(", ") || "none"))),
      h("div", { class: "table-wrap" }, h("table", { id: "ops-indexes" },
        h("caption", {}, "Annoy indexes: recall@10 measured at build against brute force"),
        h("thead", {}, h("tr", {}, ["Model", "Entity", "Items", "Dims", "Trees", "search_k", "Recall@10", "ms/query"]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, b.indexes.map((i) => h("tr", {},
          h("th", { scope: "row" }, i.model), h("td", {}, i.entity), h("td", { class: "num" }, fmtInt(i.n_items)),
          h("td", { class: "num" }, String(i.dims)), h("td", { class: "num" }, String(i.n_trees)),
          h("td", { class: "num" }, String(i.search_k)),
          h("td", { class: `num${i.recall_target_met === false ? " warn" : ""}` },
            i.recall_at_10 === null ? "—" : i.recall_at_10.toFixed(3)),
          h("td", { class: "num" }, i.ms_per_query === null ? "—" : i.ms_per_query.toFixed(3))))))))
      : section("Bundle", "bundle-h", h("p", { class: "warn" }, `No bundle: ${ops.bundle_error}`));
    page("Operations",
      h("div", { class: "grid3" },
        h("div", { class: `card stat ${storeOk ? "ok" : "bad"}` }, h("p", { class: "eyebrow" }, "Store"),
          h("p", { class: "stat-big", id: "ops-store" }, ops.store.state),
          h("p", { class: "muted small" }, ops.store.url), h("p", { class: "muted small" }, `${ops.store.detail} · since ${fmtDate(ops.store.since)}`)),
        h("div", { class: "card stat" }, h("p", { class: "eyebrow" }, "Workers"),
          h("p", { class: "stat-big", id: "ops-workers" }, `${Object.values(ops.workers.serving).reduce((a, n) => a + n, 0)} / ${ops.workers.configured}`),
          h("p", { class: "muted small" }, "serving / configured"),
          h("p", { class: "muted small" }, Object.entries(ops.workers.serving).map(([v, n]) => `${n} on ${v}`).join(" · ") || "none serving")),
        h("div", { class: `card stat ${ready && ready.status === "ready" ? "ok" : "bad"}` }, h("p", { class: "eyebrow" }, "Readiness"),
          h("p", { class: "stat-big", id: "ops-ready" }, ready ? ready.status : "—"),
          h("p", { class: "muted small" }, ready ? `/readyz answered ${ready.code}` : "/readyz did not answer"))),
      bundleCard,
      h("p", {}, button("↻ Refresh", guarded(opsPage))));
    focusTitle();
  }

  // ---------- routing ----------

  const ROUTES = [
    [/^\/track\/(.+)$/, (m) => trackPage(decodeURIComponent(m[1])), "search"],
    [/^\/artist\/(.+)$/, (m) => artistPage(decodeURIComponent(m[1])), "search"],
    [/^\/user(?:\/(.*))?$/, (m) => userPage(m[1] ? decodeURIComponent(m[1]) : ""), "user"],
    [/^\/station\/(.+)$/, (m) => stationPage(decodeURIComponent(m[1])), "station"],
    [/^\/station$/, () => newStationPage(), "station"],
    [/^\/ops$/, () => opsPage(), "ops"],
  ];

  async function route() {
    const raw = window.location.hash.replace(/^#/, "") || "/";
    const [path, query] = raw.split("?");
    const params = new URLSearchParams(query || "");
    showError("");
    loading();
    let section = "search";
    let run = () => searchPage(params);
    for (const [re, fn, sec] of ROUTES) {
      const m = path.match(re);
      if (m) { run = () => fn(m); section = sec; break; }
    }
    for (const a of document.querySelectorAll(".tabs a")) {
      if (a.dataset.section === section) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    try {
      await run();
    } catch (e) {
      main.removeAttribute("aria-busy");
      showError(e.message);
      if (!main.querySelector("h1")) page("Not shown");
    }
  }

  setUpSettings();
  window.addEventListener("hashchange", route);
  route();
})();

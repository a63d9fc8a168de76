// The page's script: a served file, so the Content-Security-Policy can forbid inline script.
//
// With API tokens configured (docs/access.md) every request carries `Authorization: Bearer`,
// the token kept for this tab only (sessionStorage; no cookie, so no request carries it unless
// this script adds it). Pictures and downloads then come through fetch as blob: URLs, since an
// <img> or a link cannot send a header. With no token configured the page works as before.
"use strict";
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "storemon.token";

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

// fetch with the bearer header when a token is stored; a 401 shows the login form.
async function api(url, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", `Bearer ${token()}`);
  const response = await fetch(url, { cache: "no-store", ...options, headers });
  if (response.status === 401) showLogin(token() ? "The token was refused: enter another one." : "This server needs an API token.");
  return response;
}

async function getJson(url) {
  const response = await api(url);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `${url}: HTTP ${response.status}`);
  return body;
}

// A URL an <img> or a link can use: the path itself when no token is needed, else a blob: URL
// of what an authorised fetch returned.
async function viewable(url) {
  if (!token()) return url;
  const response = await api(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return URL.createObjectURL(await response.blob());
}

function showLogin(note) {
  $("login").hidden = false;
  $("login-note").textContent = note || "";
  $("logout").hidden = !token();
}

function login(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token").value = "";
  $("login-note").textContent = "";
  $("logout").hidden = false;
  refresh();
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin("Token forgotten for this tab.");
}

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text || state;
}

async function trigger() {
  $("trigger").disabled = true;
  $("download").hidden = true;
  setStatus("Starting", "Starting…");
  try {
    const response = await api("/trigger_report", { method: "POST" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    await watch(body.report_id);
  } catch (error) {
    setStatus("Failed", `Failed: ${error.message}`);
  } finally {
    $("trigger").disabled = false;
  }
}

async function watch(reportId) {
  const url = `/get_report?report_id=${encodeURIComponent(reportId)}`;
  for (;;) {
    const response = await api(url);
    if (response.headers.get("X-Report-Status") === "Complete") {
      setStatus("Complete");
      $("download").href = token() ? URL.createObjectURL(await response.blob()) : url;
      $("download").download = `storemon-report-${reportId}.csv`;
      $("download").hidden = false;
      await refresh();
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    if (body.status === "Failed") { setStatus("Failed", `Failed: ${body.error || "unknown error"}`); return; }
    setStatus("Running", `Running… (report ${reportId.slice(0, 8)})`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function card(label, value) {
  const box = document.createElement("div");
  const dt = document.createElement("dt");
  const dd = document.createElement("dd");
  dt.textContent = label;
  dd.textContent = value;
  box.append(dt, dd);
  return box;
}

async function showSummary() {
  const s = await getJson("/summary");
  const share = s.uptime_share_last_week === null ? "–" : `${(100 * s.uptime_share_last_week).toFixed(2)} %`;
  $("summary").replaceChildren(
    card("stores", s.stores.toLocaleString()),
    card("uptime share, last week", share),
    card("uptime share, last 30 days",
      s.uptime_share_last_30_days == null ? "–" : `${(100 * s.uptime_share_last_30_days).toFixed(2)} %`),
    card("under 95 % up", s.stores_below_95_percent.toLocaleString()),
    card("under 80 % up", s.stores_below_80_percent.toLocaleString()),
    card("no observations", s.stores_without_observations.toLocaleString()),
  );
  $("summary-note").className = "muted";
  $("summary-note").textContent = `Report ${s.report_id.slice(0, 8)} as of ${s.as_of} (T), published ${s.published_at}.`;
  $("stale").textContent = s.stale_warning || "";
  $("stale").hidden = !s.stale_warning;
  return s;
}

// Store ids are opaque text (".", "..", "x/timeline.svg" are ids too): the page names every
// store in a query parameter, which carries any id.
const storeQuery = (storeId) => `store_id=${encodeURIComponent(storeId)}`;

function storeLink(storeId) {
  const link = document.createElement("a");
  const storeUrl = `/store?${storeQuery(storeId)}`;
  link.href = storeUrl;
  link.textContent = storeId;
  link.addEventListener("click", async (event) => {
    if (!token()) return; // a plain link when no token is needed
    event.preventDefault();
    location.href = await viewable(storeUrl);
  });
  return link;
}

function nowItem(store, what) {
  const item = document.createElement("li");
  const since = store.since_utc ? ` since ${store.since_utc.slice(0, 16).replace("T", " ")} UTC` : "";
  item.append(storeLink(store.store_id), `: ${what}${since}`);
  return item;
}

function emptyItem(text) {
  const item = document.createElement("li");
  item.className = "muted";
  item.textContent = text;
  return item;
}

async function showNow() {
  const [down, silent] = await Promise.all([
    getJson("/status?status=down&limit=100"),
    getJson("/status?not_reporting=true&limit=100"),
  ]);
  const downItems = down.stores.map((s) => nowItem(s, s.not_reporting ? "down (not reporting: a guess)" : "down"));
  const silentItems = silent.stores.map((s) => {
    const age = s.newest_poll_age_minutes === null ? "no poll yet" : `newest poll ${Math.round(s.newest_poll_age_minutes)} min before T`;
    return nowItem({ ...s, since_utc: null }, `${age}, status ${s.status}`);
  });
  $("down-now").replaceChildren(...(downItems.length ? downItems : [emptyItem("none")]));
  $("not-reporting").replaceChildren(...(silentItems.length ? silentItems : [emptyItem("none")]));
  const c = down.counts;
  $("now-note").textContent = `At T: ${c.up} up, ${c.down} down, ${c.closed} closed, ${c.no_data} without data; ` +
    `${c.not_reporting} not reporting.` + (c.down > down.stores.length ? ` The ${down.stores.length} down longest are listed.` : "");
}

function openStore(event) {
  event.preventDefault();
  const storeId = $("search-id").value.trim();
  if (storeId) viewable(`/store?${storeQuery(storeId)}`).then((url) => { location.href = url; });
}

function timeline(storeId, reportId, heading) {
  const box = document.createElement("div");
  box.className = "store";
  const title = document.createElement("h3");
  title.append(heading, storeLink(storeId));
  const image = document.createElement("img");
  image.className = "timeline";
  image.alt = `When store ${storeId} was up or down in the week before T`;
  image.loading = "lazy";
  const pictureUrl = `/store/timeline.svg?${storeQuery(storeId)}&report=${encodeURIComponent(reportId)}`;
  viewable(pictureUrl).then((src) => { image.src = src; }).catch(() => { image.alt = `${image.alt} (not available)`; });
  box.append(title, image, dailyStrip(storeId));
  return box;
}

// The store's last 90 local dates, one bar each, coloured by the day's uptime share (the way
// status pages show it); the tooltip gives the day's minutes. Filled in when its JSON arrives.
function dailyStrip(storeId) {
  const strip = document.createElement("div");
  strip.className = "strip";
  strip.setAttribute("role", "img");
  strip.setAttribute("aria-label", `Daily uptime of store ${storeId}, last 90 days`);
  getJson(`/store?${storeQuery(storeId)}`).then((store) => {
    strip.replaceChildren(...(store.daily || []).map((d) => {
      const bar = document.createElement("span");
      const share = d.uptime_share;
      bar.className = d.business_minutes === 0 ? "closed" : share === null ? "unknown"
        : share >= 0.995 ? "up" : share >= 0.95 ? "mostly" : share >= 0.8 ? "partly" : "down";
      bar.title = `${d.date}: ${d.uptime_minutes.toFixed(2)} min up, ${d.downtime_minutes.toFixed(2)} min down ` +
        `of ${d.business_minutes.toFixed(2)} business minutes` +
        (share === null ? "" : ` (${(100 * share).toFixed(2)} % up)`);
      return bar;
    }));
  }).catch(() => strip.remove());
  return strip;
}

async function showWorst(reportId) {
  const count = $("worst-count").value;
  const worst = await getJson(`/stores?worst=${count}`);
  const rows = worst.stores.map((s) => {
    const tr = document.createElement("tr");
    const idCell = document.createElement("td");
    idCell.append(storeLink(s.store_id));
    tr.append(idCell);
    for (const value of [s.downtime_last_week, s.uptime_last_week, s.downtime_last_day, s.downtime_last_hour]) {
      const td = document.createElement("td");
      td.textContent = value.toFixed(2);
      tr.append(td);
    }
    return tr;
  });
  $("worst-table").tBodies[0].replaceChildren(...rows);
  $("timelines").replaceChildren(
    ...worst.stores.map((s, i) => timeline(s.store_id, reportId, `${i + 1}. ${s.downtime_last_week.toFixed(2)} h down · `)),
  );
}

async function refresh() {
  try {
    const summary = await showSummary();
    await Promise.all([showNow(), showWorst(summary.report_id)]);
  } catch (error) {
    $("summary").replaceChildren();
    $("summary-note").textContent = error.message;
    $("summary-note").className = "error";
  }
}

async function lookup(event) {
  event.preventDefault();
  const storeId = $("lookup-id").value.trim();
  try {
    const store = await getJson(`/store?${storeQuery(storeId)}`);
    const r = store.report;
    $("lookup-result").replaceChildren(
      timeline(store.store_id, store.report_id,
        `${r.uptime_last_week.toFixed(2)} h up, ${r.downtime_last_week.toFixed(2)} h down last week (${store.timezone}) · `),
    );
  } catch (error) {
    const message = document.createElement("p");
    message.className = "error";
    message.textContent = error.message;
    $("lookup-result").replaceChildren(message);
  }
}

$("trigger").addEventListener("click", trigger);
$("worst-count").addEventListener("change", refresh);
$("lookup").addEventListener("submit", lookup);
$("search").addEventListener("submit", openStore);
$("login").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
if (token()) showLogin();
refresh();

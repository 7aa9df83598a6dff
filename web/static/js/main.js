// The dashboard's entry point: sign-in, the Socket.IO connection, and the wiring of the feed,
// search, viewer and uploads. No framework, no build step; `io` is the vendored Socket.IO client.

import { el } from "./dom.js";
import { Feed, renderItem } from "./feed.js";
import { I18n } from "./i18n.js";
import { KeysPanel } from "./keys.js";
import { ModelsPanel } from "./models.js";
import { Session } from "./session.js";
import { Uploader } from "./upload.js";
import { Viewer } from "./viewer.js";
import { WebhooksPanel } from "./webhooks.js";

const $ = (id) => document.getElementById(id);

const i18n = new I18n();
const session = new Session();
const feed = new Feed($("feed"), $("feed-empty"), i18n);
const viewer = new Viewer(session, i18n, (item) => applyItem(item));
const models = new ModelsPanel(session, i18n);
const keys = new KeysPanel(session, i18n);
const webhooks = new WebhooksPanel(session, i18n);
const search = { query: "", items: new Map() };
let socket = null;
let online = false;

new Uploader(session, i18n);
i18n.apply(document);

function applyItem(item) {
  if (item.status === "deleted") {
    feed.remove(item.id);
    if (viewer.openId === item.id) viewer.close();
    $("search-list").querySelector(`[data-id="${CSS.escape(item.id)}"]`)?.remove();
    return;
  }
  feed.upsert(item);
  viewer.update(item);
  const node = $("search-list").querySelector(`[data-id="${CSS.escape(item.id)}"]`);
  if (node) renderItem(node, item, i18n);
}

function setOnline(state) {
  online = state;
  const node = $("connection");
  node.dataset.state = state ? "online" : "offline";
  node.textContent = i18n.t(state ? "online" : "offline");
}

// -- channels ---------------------------------------------------------------------------------

function fillSelect(select, first, channels) {
  const keep = select.value;
  select.replaceChildren(el("option", { value: first.value }, first.label));
  for (const channel of channels) {
    select.append(el("option", { value: channel, "data-testid": "channel-option" }, channel || i18n.t("root")));
  }
  select.value = [...select.options].some((o) => o.value === keep) ? keep : first.value;
}

function renderChannels() {
  const channels = feed.channels();
  fillSelect($("channel-filter"), { value: "*", label: i18n.t("allChannels") }, channels);
  fillSelect($("upload-channel"), { value: "", label: i18n.t("defaultChannel") }, channels.filter(Boolean));
}

feed.onChannels(renderChannels);
$("channel-filter").addEventListener("change", async () => {
  const value = $("channel-filter").value;
  feed.setChannel(value === "*" ? null : value);
  if (value !== "*") await loadList(value); // older results of that channel than the first page
});

// -- data -------------------------------------------------------------------------------------

function itemsOf(body) {
  if (Array.isArray(body)) return body;
  return body.items || body.results || [];
}

async function loadList(channel = null) {
  const query = new URLSearchParams({ limit: "100" });
  if (channel !== null) query.set("channel", channel);
  try {
    const body = await session.json(`/api/v1/results?${query}`);
    for (const item of itemsOf(body)) feed.upsert(item, true);
  } catch (err) {
    if (session.active) $("upload-status").textContent = i18n.t("loadFailed", { error: err.message });
  }
}

async function runSearch(query) {
  search.query = query;
  const list = $("search-list");
  list.replaceChildren();
  $("search-results").hidden = false;
  $("search-clear").hidden = false;
  try {
    const body = await session.json(`/api/v1/search?${new URLSearchParams({ q: query, limit: "50" })}`);
    const items = itemsOf(body);
    $("search-summary").textContent = i18n.t("searchSummary", { n: items.length, q: query });
    for (const item of items) {
      const node = el("li", { "data-testid": "search-item" });
      renderItem(node, item, i18n);
      node.dataset.testid = "search-item";
      list.append(node);
    }
  } catch (err) {
    $("search-summary").textContent = i18n.t("loadFailed", { error: err.message });
  }
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const query = $("search-input").value.trim();
  if (query) runSearch(query);
});
$("search-clear").addEventListener("click", () => {
  $("search-input").value = "";
  $("search-results").hidden = true;
  $("search-clear").hidden = true;
});
$("search-list").addEventListener("click", (event) => {
  const node = event.target.closest("[data-id]");
  if (node) viewer.open(node.dataset.id);
});
feed.onOpenItem = (id) => viewer.open(id);

// -- live updates -----------------------------------------------------------------------------

function connect() {
  if (socket) return;
  // auth as a function: every (re)connection presents the current access token
  socket = window.io({ auth: (cb) => cb({ token: session.accessToken }) });
  socket.on("connect", () => {
    setOnline(true);
    loadList(); // also fills in what was missed while disconnected
  });
  socket.on("disconnect", (reason) => {
    setOnline(false);
    if (reason === "io server disconnect") reconnectWithFreshToken();
  });
  socket.on("connect_error", (err) => {
    setOnline(false);
    if (String(err.message || "").startsWith("unauthorized")) reconnectWithFreshToken();
  });
  socket.on("error", () => {}); // "token expired": the disconnect that follows reconnects
  socket.on("result", (item) => applyItem(item));
  socket.on("training", (job) => models.onJob(job)); // sent to admins only
}

async function reconnectWithFreshToken() {
  if (!session.active || !socket) return;
  try {
    await session.refresh();
  } catch (_err) {
    return; // refresh refused: the session ended and the login form is back
  }
  if (socket && !socket.connected) socket.connect();
}

session.addEventListener("tokens", () => {
  if (socket && socket.connected) socket.emit("renew", { token: session.accessToken });
});

// -- sign-in ----------------------------------------------------------------------------------

async function start() {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("logout").hidden = false;
  $("whoami").textContent = session.username;
  session.schedule();
  renderChannels();
  connect();
  try {
    const me = await session.me();
    $("whoami").textContent = `${me.username} · ${me.team}`;
    $("whoami").dataset.team = me.team;
    models.show(me.role === "admin" || me.role === "operator");
    keys.show();
    viewer.setAdmin(me.role === "admin" || me.role === "operator");
    webhooks.show(me.role === "admin" || me.role === "operator");
  } catch (_err) {
    // shown as the name typed at sign-in
  }
}

function stop(expired) {
  if (socket) {
    socket.removeAllListeners();
    socket.disconnect();
    socket = null;
  }
  setOnline(false);
  viewer.close();
  models.hide();
  keys.hide();
  webhooks.hide();
  feed.clear();
  $("search-results").hidden = true;
  $("app-view").hidden = true;
  $("logout").hidden = true;
  $("whoami").textContent = "";
  $("login-view").hidden = false;
  $("login-error").textContent = expired ? i18n.t("sessionExpired") : "";
}

session.addEventListener("ended", (event) => stop(event.detail.expired));

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  $("login-submit").disabled = true;
  try {
    await session.login($("login-username").value.trim(), $("login-password").value);
    $("login-password").value = "";
    start();
  } catch (err) {
    $("login-error").textContent = i18n.t("wrongLogin", { error: err.message });
  } finally {
    $("login-submit").disabled = false;
  }
});

$("logout").addEventListener("click", () => session.logout());
$("lang-toggle").addEventListener("click", () => i18n.toggle());
i18n.addEventListener("change", () => {
  setOnline(online);
  renderChannels();
  if (search.query && !$("search-results").hidden) runSearch(search.query);
});

// for the console and the browser tests; the page itself never reads it
window.teamocr = { session, feed, viewer, models, keys, i18n, get socket() { return socket; } };
window.teamocr = { session, feed, viewer, models, webhooks, i18n, get socket() { return socket; } };

if (session.active) start();

// The live feed: results newest first, each updated in place as "result" events arrive
// (queued -> processing -> done/duplicate/failed, and later corrections), filtered by channel.

import { el, preview } from "./dom.js";

const RANK = { queued: 0, processing: 1, done: 2, duplicate: 2, failed: 2 };

/** Fill (or refill) a feed item's <li> from `item`; text only, never HTML. */
export function renderItem(node, item, i18n) {
  const status = String(item.status || "queued");
  node.dataset.testid = node.dataset.testid || "feed-item";
  node.dataset.id = item.id;
  node.dataset.status = status;
  node.dataset.channel = item.channel || "";
  node.className = `feed-item status-${status}`;
  node.tabIndex = 0;
  node.replaceChildren();

  const head = el("div", { class: "item-head" });
  head.append(el("span", { class: "filename", "data-testid": "item-filename" }, item.filename || item.id));
  head.append(el("span", { class: `badge badge-${status}`, "data-testid": "item-status" },
    i18n.t(`status.${status}`)));
  node.append(head);

  const when = item.finished_at || item.created_at;
  const meta = el("div", { class: "item-meta" });
  meta.append(el("span", { class: "channel", "data-testid": "item-channel" }, item.channel || i18n.t("root")));
  if (when) {
    const stamp = new Date(when * 1000);
    meta.append(el("time", { datetime: stamp.toISOString() },
      stamp.toLocaleString(i18n.lang === "zh" ? "zh-CN" : "en")));
  }
  if (item.uploader) meta.append(el("span", { class: "uploader" }, item.uploader));
  node.append(meta);

  if (status === "failed") {
    const error = el("p", { class: "item-error", "data-testid": "item-error" });
    error.append(el("strong", {}, `${i18n.t("errorLabel")} `), document.createTextNode(item.error || "?"));
    node.append(error);
  } else if (status === "processing" && Number(item.page_count) > 1 && item.pages_done !== undefined) {
    const done = Number(item.pages_done);
    const count = Number(item.page_count);
    const progress = el("p", { class: "item-progress", "data-testid": "item-progress" });
    progress.append(el("progress", { max: String(count), value: String(done) }),
      document.createTextNode(` ${i18n.t("pagesDone", { done, count })}`));
    node.append(progress);
  } else if (status === "duplicate" && !item.text) {
    node.append(el("p", { class: "item-text muted", "data-testid": "item-text" }, i18n.t("duplicateOf")));
  }
  if (item.text) node.append(el("p", { class: "item-text", "data-testid": "item-text" }, preview(item.text)));
  return node;
}

export class Feed {
  constructor(list, empty, i18n, onOpen) {
    this.list = list;
    this.empty = empty;
    this.i18n = i18n;
    this.items = new Map(); // id -> item
    this.nodes = new Map(); // id -> <li>
    this.channel = null; // null = all
    this.listeners = [];
    list.addEventListener("click", (event) => this._open(event));
    list.addEventListener("keydown", (event) => {
      if (event.key === "Enter") this._open(event);
    });
    i18n.addEventListener("change", () => this.relabel());
  }

  _open(event) {
    const node = event.target.closest("[data-id]");
    if (node) this.onOpenItem(node.dataset.id);
  }

  onOpenItem(_id) {} // set by the app

  /** Channels seen so far, sorted ("" = the root). */
  channels() {
    return [...new Set([...this.items.values()].map((item) => item.channel || ""))].sort();
  }

  /**
   * Insert or update `item`. Live events always win (they arrive in order); a listed item
   * (`listed`) only fills in what is missing or further along, so a slow list cannot undo a
   * newer event.
   */
  upsert(item, listed = false) {
    if (!item || !item.id) return;
    const known = this.items.get(item.id);
    if (known && listed && (RANK[known.status] ?? 0) >= (RANK[item.status] ?? 0)) return;
    const isNewChannel = !this.channels().includes(item.channel || "");
    this.items.set(item.id, item);
    let node = this.nodes.get(item.id);
    if (!node) {
      node = el("li", { "data-testid": "feed-item" });
      this.nodes.set(item.id, node);
      this._place(node, item);
    }
    renderItem(node, item, this.i18n);
    node.hidden = !this._visible(item);
    this.empty.hidden = this.items.size > 0;
    if (isNewChannel) this.listeners.forEach((fn) => fn());
  }

  /** Keep newest first: before the first item created earlier than this one. */
  _place(node, item) {
    const created = Number(item.created_at || 0);
    for (const other of this.list.children) {
      const known = this.items.get(other.dataset.id);
      if (known && Number(known.created_at || 0) < created) {
        this.list.insertBefore(node, other);
        return;
      }
    }
    this.list.append(node);
  }

  _visible(item) {
    return this.channel === null || (item.channel || "") === this.channel;
  }

  setChannel(channel) {
    this.channel = channel;
    for (const [id, node] of this.nodes) node.hidden = !this._visible(this.items.get(id));
  }

  onChannels(fn) {
    this.listeners.push(fn);
  }

  relabel() {
    for (const [id, node] of this.nodes) renderItem(node, this.items.get(id), this.i18n);
  }

  /** Take a deleted result out of the feed. */
  remove(id) {
    const node = this.nodes.get(id);
    if (node) node.remove();
    this.items.delete(id);
    this.nodes.delete(id);
    this.empty.hidden = this.items.size > 0;
  }

  clear() {
    this.items.clear();
    this.nodes.clear();
    this.list.replaceChildren();
    this.empty.hidden = false;
  }
}

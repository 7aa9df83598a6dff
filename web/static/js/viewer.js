// The viewer: a result's image (fetched with the token, shown from a blob URL), its text boxes
// drawn over it as an SVG in image coordinates (so they scale with the displayed image), and its
// lines: click one to copy it, or edit it (POST .../lines/<index>; others see the edit live).
// A document (a PDF, a multi-page TIFF) is shown a page at a time (.../pages/<k>/image), its
// boxes and lines those of that page; the buttons or the arrow and Page keys turn the pages.
// Lines are shown in their blocks (layout.js): hovering a block outlines it on the image, its
// button copies its text; tables are shown as tables with CSV and Excel downloads.

import { clear, copyText, el, svg, toast } from "./dom.js";
import { blockText, blocksOn, tableElement, tablesOn } from "./layout.js";

export class Viewer {
  constructor(session, i18n, onItem) {
    this.session = session;
    this.i18n = i18n;
    this.onItem = onItem; // called with the item an edit returned
    this.item = null;
    this.blobUrl = null;
    this.editing = null; // index of the line being edited
    this.pending = null; // an update that arrived while editing
    this.panel = document.getElementById("viewer");
    this.title = document.getElementById("viewer-title");
    this.meta = document.getElementById("viewer-meta");
    this.error = document.getElementById("viewer-error");
    this.image = document.getElementById("viewer-image");
    this.boxes = document.getElementById("viewer-boxes");
    this.lines = document.getElementById("viewer-lines");
    this.tables = document.getElementById("viewer-tables");
    this.page = 1;
    this.pager = document.getElementById("viewer-pager");
    this.pageLabel = document.getElementById("viewer-page");
    document.getElementById("viewer-prev").addEventListener("click", () => this.turn(-1));
    document.getElementById("viewer-next").addEventListener("click", () => this.turn(1));
    document.addEventListener("keydown", (event) => {
      if (this.panel.hidden || !this.item || this.editing !== null) return;
      if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
      const step = { ArrowRight: 1, PageDown: 1, ArrowLeft: -1, PageUp: -1 }[event.key];
      if (step && this.pageCount > 1) {
        event.preventDefault();
        this.turn(step);
      }
    });
    document.getElementById("viewer-close").addEventListener("click", () => this.close());
    this.pdfButton = document.getElementById("viewer-pdf");
    this.pdfButton.addEventListener("click", () => this.downloadPdf());
    this.copyAllButton = document.getElementById("viewer-copy-all");
    this.copyAllButton.addEventListener("click", () => this.item && this._copy(this.item.text || ""));
    this.isAdmin = false;
    this.retryButton = document.getElementById("viewer-retry");
    this.rereadButton = document.getElementById("viewer-reread");
    this.deleteButton = document.getElementById("viewer-delete");
    this.retryButton.addEventListener("click", () => this._act(`results/${encodeURIComponent(this.item.id)}/retry`));
    this.rereadButton.addEventListener("click", () =>
      this._act("reprocess", { method: "POST", body: JSON.stringify({ ids: [this.item.id] }) }));
    this.deleteButton.addEventListener("click", () => this.remove());
    this.versionsBox = document.getElementById("viewer-versions");
    this.versionSelect = document.getElementById("viewer-version");
    this.versionText = document.getElementById("viewer-version-text");
    this.versions = [];
    this.versionSelect.addEventListener("change", () => this._showVersion());
    this.image.addEventListener("load", () => {
      this.panel.dataset.image = "loaded";
      this._drawBoxes();
    });
    this.image.addEventListener("error", () => {
      if (!this.image.getAttribute("src")) return;
      this.panel.dataset.image = "failed";
      this.error.textContent = this.i18n.t("imageFailed");
    });
    i18n.addEventListener("change", () => this.item && this._render());
  }

  get openId() {
    return this.item ? this.item.id : null;
  }

  /** Pages of the open result: a document's count, else 1. */
  get pageCount() {
    return this.item && Array.isArray(this.item.pages) && this.item.pages.length ? this.item.pages.length : 1;
  }

  /** Show the page ``step`` pages on (within the document). */
  async turn(step) {
    const page = Math.min(this.pageCount, Math.max(1, this.page + step));
    if (!this.item || page === this.page) return;
    this.page = page;
    this._render();
    await this._loadImage(this.item.id);
  }

  _onPage(line) {
    return this.pageCount === 1 || (line.page || 1) === this.page;
  }

  async open(id) {
    this.editing = null;
    this.pending = null;
    this.page = 1;
    this.panel.hidden = false;
    this.panel.dataset.id = id;
    this.panel.dataset.state = "loading";
    this.error.textContent = "";
    try {
      this.item = await this.session.json(`/api/v1/results/${encodeURIComponent(id)}`);
    } catch (err) {
      this.error.textContent = this.i18n.t("loadFailed", { error: err.message });
      this.panel.dataset.state = "failed";
      return;
    }
    this._render();
    this.panel.dataset.state = "ready";
    this._loadVersions(id);
    await this._loadImage(id);
    if (window.matchMedia("(max-width: 639px)").matches) this.panel.scrollIntoView({ behavior: "smooth" });
  }

  close() {
    this.item = null;
    this.panel.hidden = true;
    delete this.panel.dataset.id;
    this._setImage(null);
  }

  /** A result event: refresh the open result in place (after a running edit ends). */
  update(item) {
    if (!this.item || item.id !== this.item.id) return;
    if (this.editing !== null) {
      this.pending = item;
      return;
    }
    const reread = item.status === "done" && item.finished_at !== this.item.finished_at;
    this.item = item;
    this._render();
    if (reread) this._loadVersions(item.id); // a re-read's old reading is now a version
  }

  async _loadImage(id) {
    this._setImage(null);
    try {
      const path = this.pageCount > 1 ? `pages/${this.page}/image` : "image";
      const page = this.page;
      const response = await this.session.fetch(`/api/v1/results/${encodeURIComponent(id)}/${path}`);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const blob = await response.blob();
      if (this.openId !== id || this.page !== page) return; // another result or page was opened meanwhile
      this._setImage(URL.createObjectURL(blob));
    } catch (_err) {
      if (this.openId !== id) return;
      this.panel.dataset.image = "failed";
      this.error.textContent = this.i18n.t("imageFailed");
    }
  }

  /** Admins also get "Read again" and "Delete". */
  setAdmin(isAdmin) {
    this.isAdmin = isAdmin;
    if (this.item) this._render();
  }

  async _act(path, options = { method: "POST" }) {
    try {
      await this.session.json(`/api/v1/${path}`, { headers: { "Content-Type": "application/json" }, ...options });
      toast(this.i18n.t("queuedAgain"));
    } catch (err) {
      toast(this.i18n.t("actionFailed", { error: err.message }));
    }
  }

  async remove() {
    if (!this.item || !window.confirm(this.i18n.t("confirmDelete"))) return;
    try {
      await this.session.json(`/api/v1/results/${encodeURIComponent(this.item.id)}`, { method: "DELETE" });
      this.close(); // the "deleted" event takes it out of every member's feed
    } catch (err) {
      toast(this.i18n.t("actionFailed", { error: err.message }));
    }
  }

  async _loadVersions(id) {
    this.versions = [];
    this.versionsBox.hidden = true;
    try {
      this.versions = (await this.session.json(`/api/v1/results/${encodeURIComponent(id)}/versions`)).items;
    } catch (_err) {
      return;
    }
    if (this.openId !== id || !this.versions.length) return;
    const when = (stamp) => new Date(stamp * 1000).toLocaleString(this.i18n.lang === "zh" ? "zh-CN" : "en");
    this.versionSelect.replaceChildren(
      el("option", { value: "" }, this.i18n.t("currentReading")),
      ...this.versions.map((v) => el("option", { value: String(v.version) },
        this.i18n.t("versionOf", { version: v.version, when: when(v.replaced_at) }))),
    );
    this.versionText.hidden = true;
    this.versionsBox.hidden = false;
  }

  _showVersion() {
    const chosen = this.versions.find((v) => String(v.version) === this.versionSelect.value);
    this.versionText.hidden = !chosen;
    this.versionText.textContent = chosen ? chosen.text : "";
  }

  /** Fetch the open result's searchable PDF (with the token) and save it under the file's name. */
  async downloadPdf() {
    if (!this.item) return;
    const stem = String(this.item.filename || this.item.id).replace(/\.[^.]*$/, "");
    this.panel.dataset.pdf = "loading";
    const saved = await this._download("pdf", `${stem}.pdf`, "pdfFailed");
    this.panel.dataset.pdf = saved ? "saved" : "failed";
  }

  /** Fetch ``path`` (under the open result, with the token) and save it as ``name``; a toast with
   * ``failKey``'s words when it cannot. Whether it was saved. */
  async _download(path, name, failKey = "downloadFailed") {
    const item = this.item;
    try {
      const response = await this.session.fetch(`/api/v1/results/${encodeURIComponent(item.id)}/${path}`);
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(body.error || `HTTP ${response.status}`);
      }
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: name, hidden: "" });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      return true;
    } catch (err) {
      toast(this.i18n.t(failKey, { error: err.message }));
      return false;
    }
  }

  _setImage(url) {
    this.panel.dataset.image = url ? "loading" : "none";
    if (this.blobUrl) URL.revokeObjectURL(this.blobUrl);
    this.blobUrl = url;
    if (url) this.image.src = url;
    else this.image.removeAttribute("src");
    clear(this.boxes);
  }

  _render() {
    const item = this.item;
    this.panel.dataset.status = item.status;
    this.title.textContent = item.filename || item.id;
    const size = item.width && item.height ? `${item.width}×${item.height}` : "";
    this.meta.textContent = [item.channel || this.i18n.t("root"), this.i18n.t(`status.${item.status}`), size]
      .filter(Boolean).join(" · ");
    this.error.textContent = item.status === "failed" ? `${this.i18n.t("errorLabel")} ${item.error || "?"}` : "";
    this.pager.hidden = this.pageCount <= 1;
    this.pdfButton.hidden = !["done", "duplicate"].includes(item.status);
    this.copyAllButton.hidden = !(item.text || "").trim();
    this.retryButton.hidden = item.status !== "failed";
    this.rereadButton.hidden = !this.isAdmin || item.status !== "done";
    this.deleteButton.hidden = !this.isAdmin;
    this.pdfButton.title = this.i18n.t("downloadPdfHint");
    this.panel.dataset.page = String(this.page);
    this.pageLabel.textContent = this.i18n.t("pageOf", { page: this.page, count: this.pageCount });
    this._renderTables();
    this._renderLines();
    this._drawBoxes();
  }

  /** Each table of the page as a table, with its CSV and the result's workbook to download. */
  _renderTables() {
    clear(this.tables);
    const stem = String(this.item.filename || this.item.id).replace(/\.[^.]*$/, "");
    for (const { table, number } of tablesOn(this.item, this.page, this.pageCount)) {
      const box = el("div", { class: "table-box", "data-testid": "viewer-table-box", "data-table": number });
      const csv = el("button", { type: "button", class: "small", "data-testid": "table-csv" }, this.i18n.t("downloadCsv"));
      csv.addEventListener("click", () => this._download(`tables/${number}.csv`, `${stem}-table-${number}.csv`));
      const xlsx = el("button", { type: "button", class: "small", "data-testid": "table-xlsx" },
        this.i18n.t("downloadExcel"));
      xlsx.addEventListener("click", () => this._download("tables.xlsx", `${stem}-tables.xlsx`));
      const head = el("div", { class: "table-head" });
      head.append(el("strong", {}, this.i18n.t("tableN", { n: number })), csv, xlsx);
      const scroll = el("div", { class: "table-scroll" });
      scroll.append(tableElement(this.item, table, this.i18n.t("tableTooLarge")));
      box.append(head, scroll);
      this.tables.append(box);
    }
  }

  /** The page's lines, in their blocks when the result has blocks. */
  _renderLines() {
    clear(this.lines);
    const lines = this.item.lines || [];
    if (!lines.some((line) => this._onPage(line))) this.lines.append(el("li", { class: "muted" }, this.i18n.t("noLines")));
    const blocks = blocksOn(this.item, this.page, this.pageCount);
    const placed = new Set();
    for (const { block, number } of blocks) {
      const group = el("li", { class: "block", "data-testid": "viewer-block", "data-kind": block.kind, "data-block": number });
      const copy = el("button", { type: "button", class: "small", "data-testid": "block-copy",
        title: this.i18n.t("copyBlockHint") }, this.i18n.t("copyBlock"));
      copy.addEventListener("click", () => this._copy(blockText(this.item, block)));
      const head = el("div", { class: "block-head" });
      head.append(el("span", { class: "block-kind muted" }, this.i18n.t(`kind.${block.kind}`)), copy);
      const inner = el("ol", { class: "block-lines" });
      for (const index of block.lines || []) {
        if (!lines[index] || placed.has(index)) continue;
        placed.add(index);
        inner.append(this._lineRow(lines[index], index));
      }
      group.addEventListener("mouseenter", () => this._highlightBlock(number, true));
      group.addEventListener("mouseleave", () => this._highlightBlock(number, false));
      group.append(head, inner);
      this.lines.append(group);
    }
    lines.forEach((line, index) => {
      if (!this._onPage(line) || placed.has(index)) return; // another page's (indexes stay the result's, as edits use them)
      this.lines.append(this._lineRow(line, index));
    });
  }

  /** One line: click its text to copy it, or edit it. */
  _lineRow(line, index) {
    const row = el("li", { class: "line", "data-testid": "viewer-line", "data-index": index });
    const text = el("span", { class: "line-text", "data-testid": "line-text", role: "button", tabindex: 0,
      title: this.i18n.t("linesHint") }, line.text);
    text.addEventListener("click", () => this._copy(line.text));
    text.addEventListener("keydown", (event) => event.key === "Enter" && this._copy(line.text));
    row.addEventListener("mouseenter", () => this._highlight(index, true));
    row.addEventListener("mouseleave", () => this._highlight(index, false));
    const edit = el("button", { type: "button", class: "small", "data-testid": "line-edit" }, this.i18n.t("edit"));
    edit.addEventListener("click", () => this._edit(row, index, line.text));
    row.append(text, edit);
    return row;
  }

  _highlightBlock(number, on) {
    const box = this.boxes.querySelector(`[data-block="${number}"]`);
    if (box) box.classList.toggle("active", on);
    const group = this.lines.querySelector(`[data-block="${number}"]`);
    if (group) group.classList.toggle("active", on);
  }

  async _copy(text) {
    toast(this.i18n.t((await copyText(text)) ? "copied" : "copyFailed"));
  }

  _edit(row, index, current) {
    if (this.editing !== null) return;
    this.editing = index;
    const input = el("input", { class: "line-input", "data-testid": "line-input", value: current });
    input.value = current;
    const save = el("button", { type: "button", class: "small", "data-testid": "line-save" }, this.i18n.t("save"));
    const cancel = el("button", { type: "button", class: "small", "data-testid": "line-cancel" },
      this.i18n.t("cancel"));
    row.replaceChildren(input, save, cancel);
    input.focus();
    const done = () => {
      this.editing = null;
      const next = this.pending || this.item;
      this.pending = null;
      if (next && this.item && next.id === this.item.id) {
        this.item = next;
        this._render();
      }
    };
    save.addEventListener("click", () => this._save(index, input.value).then(done));
    cancel.addEventListener("click", done);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") save.click();
      if (event.key === "Escape") cancel.click();
    });
  }

  async _save(index, text) {
    const id = this.item.id;
    try {
      const body = await this.session.json(`/api/v1/results/${encodeURIComponent(id)}/lines/${index}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text }),
      });
      const item = body && body.id ? body : body.item || body.result;
      if (item && item.id === id) {
        this.pending = item;
        this.onItem(item);
      }
      toast(this.i18n.t("saved"));
    } catch (err) {
      toast(this.i18n.t("editFailed", { error: err.message }));
    }
  }

  /** One polygon per line, in the image's own pixel coordinates (the SVG's viewBox). */
  _drawBoxes() {
    clear(this.boxes);
    if (!this.item || !this.image.getAttribute("src")) return;
    const width = this.image.naturalWidth || this.item.width;
    const height = this.image.naturalHeight || this.item.height;
    if (!width || !height) return;
    this.boxes.setAttribute("viewBox", `0 0 ${width} ${height}`);
    (this.item.lines || []).forEach((line, index) => {
      if (!this._onPage(line)) return;
      const points = (line.points || []).map((p) => `${Number(p[0])},${Number(p[1])}`).join(" ");
      if (!points) return;
      const box = svg("polygon", { points, "data-index": index, "data-testid": "viewer-box", class: "box" });
      const label = svg("title");
      label.textContent = line.text;
      box.append(label);
      box.addEventListener("click", () => this._select(index));
      this.boxes.append(box);
    });
    for (const { block, number } of blocksOn(this.item, this.page, this.pageCount)) {
      const [x0, y0, x1, y1] = (block.bbox || []).map(Number);
      if (![x0, y0, x1, y1].every(Number.isFinite)) continue;
      this.boxes.append(svg("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, class: "block-box",
        "data-block": number, "data-testid": "viewer-block-box" }));
    }
  }

  _highlight(index, on) {
    const box = this.boxes.querySelector(`[data-index="${index}"]`);
    if (box) box.classList.toggle("active", on);
  }

  _select(index) {
    const row = this.lines.querySelector(`[data-index="${index}"]`);
    if (!row) return;
    for (const other of this.lines.querySelectorAll(".selected")) other.classList.remove("selected");
    row.classList.add("selected");
    row.scrollIntoView({ block: "nearest" });
    const text = (this.item.lines[index] || {}).text;
    if (text !== undefined) this._copy(text);
  }
}

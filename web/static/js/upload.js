// Uploads: drop files, folders (walked with webkitGetAsEntry) or ZIPs, or pick them; sent in
// batches with XMLHttpRequest (fetch reports no upload progress) to POST /api/v1/upload.

import { el } from "./dom.js";

const BATCH_BYTES = 40 * 1024 * 1024; // below the server's request limit
const BATCH_FILES = 100;
const CLUTTER = /^(\.|~\$)|\.(part|crdownload|tmp)$/i; // hidden files, Office locks, partial downloads

function fileOf(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

function readBatch(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

/** Every file under a dropped entry (readEntries returns a directory in chunks). */
async function walk(entry, out) {
  if (CLUTTER.test(entry.name)) return;
  if (entry.isFile) {
    out.push(await fileOf(entry));
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (let batch = await readBatch(reader); batch.length; batch = await readBatch(reader)) {
      for (const child of batch) await walk(child, out);
    }
  }
}

/** Files of a drop; entries must be taken synchronously, before the event's data goes away. */
export async function droppedFiles(dataTransfer) {
  const entries = [];
  const loose = [];
  for (const item of dataTransfer.items || []) {
    if (item.kind !== "file") continue;
    const entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
    if (entry) entries.push(entry);
    else if (item.getAsFile()) loose.push(item.getAsFile());
  }
  if (!entries.length && !loose.length) return [...(dataTransfer.files || [])];
  const out = [...loose];
  for (const entry of entries) await walk(entry, out);
  return out;
}

export function batches(files) {
  const out = [];
  let current = [];
  let bytes = 0;
  for (const file of files) {
    if (current.length && (bytes + file.size > BATCH_BYTES || current.length >= BATCH_FILES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(file);
    bytes += file.size;
  }
  if (current.length) out.push(current);
  return out;
}

function post(files, channel, token, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    if (channel) form.append("channel", channel);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/upload");
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText || "{}");
      } catch (_err) {
        body = {};
      }
      resolve({ status: xhr.status, body });
    });
    xhr.addEventListener("error", () => reject(new Error("network error")));
    xhr.send(form);
  });
}

export class Uploader {
  constructor(session, i18n) {
    this.session = session;
    this.i18n = i18n;
    this.zone = document.getElementById("dropzone");
    this.progress = document.getElementById("upload-progress");
    this.status = document.getElementById("upload-status");
    this.errors = document.getElementById("upload-errors");
    this.channel = document.getElementById("upload-channel");
    for (const id of ["file-input", "folder-input"]) {
      const input = document.getElementById(id);
      input.addEventListener("change", () => {
        const files = [...input.files].filter((file) => !CLUTTER.test(file.name));
        input.value = "";
        this.send(files);
      });
    }
    this.zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      this.zone.classList.add("over");
    });
    this.zone.addEventListener("dragleave", () => this.zone.classList.remove("over"));
    this.zone.addEventListener("drop", (event) => {
      event.preventDefault();
      this.zone.classList.remove("over");
      droppedFiles(event.dataTransfer).then((files) => this.send(files));
    });
  }

  async send(files) {
    this.errors.replaceChildren();
    if (!files.length) {
      this.status.textContent = this.i18n.t("nothingToUpload");
      return;
    }
    const total = files.reduce((sum, file) => sum + file.size, 0) || 1;
    let sent = 0;
    let accepted = 0;
    const refused = [];
    this.progress.hidden = false;
    this.zone.dataset.state = "uploading";
    const show = (fraction) => {
      const pct = Math.round(100 * fraction);
      this.progress.value = pct;
      this.status.textContent = this.i18n.t("uploading", { n: files.length, pct });
    };
    try {
      for (const batch of batches(files)) {
        const size = batch.reduce((sum, file) => sum + file.size, 0);
        const progress = (part) => show((sent + part * size) / total);
        let reply = await post(batch, this.channel.value, this.session.accessToken, progress);
        if (reply.status === 401) {
          await this.session.refresh();
          reply = await post(batch, this.channel.value, this.session.accessToken, progress);
        }
        if (reply.status >= 400 && !(reply.body.items || []).length) {
          throw new Error(reply.body.error || `HTTP ${reply.status}`);
        }
        accepted += (reply.body.items || []).length;
        refused.push(...(reply.body.errors || []));
        sent += size;
        show(sent / total);
      }
      this.status.textContent = this.i18n.t("uploaded", { n: accepted });
      this.zone.dataset.state = "done";
    } catch (err) {
      this.status.textContent = this.i18n.t("uploadFailed", { error: err.message });
      this.zone.dataset.state = "failed";
    } finally {
      this.progress.hidden = true;
    }
    if (refused.length) {
      this.errors.append(el("li", { class: "error-text" }, this.i18n.t("uploadErrors", { n: refused.length })));
      for (const error of refused) {
        const text = typeof error === "string" ? error
          : [error.filename, error.error || error.message].filter(Boolean).join(": ");
        this.errors.append(el("li", { "data-testid": "upload-error" }, text));
      }
    }
  }
}

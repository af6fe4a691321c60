// Event reports (事件上报): photos resized on the phone, each report kept in IndexedDB
// with its photos until POST /api/v1/reports has answered it, then followed by status.
"use strict";

import { done, request } from "./idb.js";

const REPORTS = "reports";
const MINE = "tracker.reports";
const REFUSED = "tracker.reportErrors";
const KEEP_MS = 7 * 24 * 3600 * 1000;
export const MAX_PHOTOS = 5;
export const PHOTO_MAX_SIDE_PX = 1600;
const JPEG_QUALITY = 0.85;

// Decode a photo and encode it again as a JPEG of at most PHOTO_MAX_SIDE_PX on its long side.
export async function resizePhoto(file) {
  let source;
  try {
    source = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    source = await decodeWithImage(file);
  }
  const width = source.width || source.naturalWidth;
  const height = source.height || source.naturalHeight;
  const scale = Math.min(1, PHOTO_MAX_SIDE_PX / Math.max(width, height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(width * scale));
  canvas.height = Math.max(1, Math.round(height * scale));
  const ctx = canvas.getContext("2d");
  // JPEG has no transparency: a transparent PNG would otherwise turn black.
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  if (source.close) source.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
  if (!blob) throw new Error(`cannot encode ${file.name}`);
  return blob;
}

async function decodeWithImage(file) {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } finally {
    URL.revokeObjectURL(url);
  }
}

export class ReportQueue {
  constructor(db) {
    this.db = db;
  }

  async add(report) {
    const tx = this.db.transaction(REPORTS, "readwrite");
    tx.objectStore(REPORTS).put(report);
    await done(tx);
  }

  async all() {
    const tx = this.db.transaction(REPORTS, "readonly");
    const reports = await request(tx.objectStore(REPORTS).getAll());
    return reports.sort((a, b) => a.ts - b.ts);
  }

  async remove(key) {
    const tx = this.db.transaction(REPORTS, "readwrite");
    tx.objectStore(REPORTS).delete(key);
    await done(tx);
  }

  async clear() {
    const tx = this.db.transaction(REPORTS, "readwrite");
    tx.objectStore(REPORTS).clear();
    await done(tx);
  }
}

export class Reports {
  /**
   * @param {object} options
   * @param {ReportQueue} options.queue
   * @param {() => string|null} options.token  the device token, for the Authorization header
   * @param {() => void} options.onRefused  the server refused the device token (401)
   * @param {() => void} options.onChange
   */
  constructor({ queue, token, onRefused, onChange }) {
    Object.assign(this, { queue, token, onRefused, onChange });
    this.queued = []; // reports waiting to upload: {key, category, note, ts}, no photos
    this.mine = JSON.parse(localStorage.getItem(MINE) || "[]");
    this.refused = JSON.parse(localStorage.getItem(REFUSED) || "[]");
    this.uploading = false;
    this.again = false; // upload() was asked for while an upload was running
    this.uploads = 0; // answered uploads, for the tests
    this.backoffMs = 0;
    this.retryAt = 0;
    this.retryTimer = null;
  }

  async load() {
    const queued = await this.queue.all();
    this.queued = queued.map(({ key, category, note, ts }) => ({ key, category, note, ts }));
    this.onChange();
  }

  save() {
    const cutoff = Date.now() - KEEP_MS;
    this.mine = this.mine.filter((r) => !r.created_at || Date.parse(r.created_at) > cutoff);
    localStorage.setItem(MINE, JSON.stringify(this.mine));
    localStorage.setItem(REFUSED, JSON.stringify(this.refused.slice(-5)));
  }

  // Queue a report; `photos` are the already resized JPEG blobs.
  async submit({ category, note, photos, position }) {
    const report = {
      key: crypto.randomUUID(),
      category,
      note,
      lat: position ? position.lat : null,
      lon: position ? position.lon : null,
      ts: Date.now(),
      photos,
    };
    await this.queue.add(report);
    await this.load();
    this.upload({ now: true });
    return report.key;
  }

  // `sync` answered with the person's reports of the last seven days.
  replaceMine(reports) {
    const local = new Map(this.mine.map((r) => [r.key, r]));
    const synced = new Set(reports.map((r) => r.key));
    // The server does not send the notes back: the phone keeps its own.
    this.mine = [
      ...reports.map((r) => ({ note: local.get(r.key)?.note, ...r })),
      ...this.mine.filter((r) => !synced.has(r.key)),
    ];
    this.save();
    this.onChange();
  }

  // A `report_status` event: one of the person's reports changed status.
  setStatus({ key, incident_id, status }) {
    const mine = this.mine.find((r) => r.key === key);
    if (mine) Object.assign(mine, { incident_id, status });
    else this.mine.unshift({ key, incident_id, status, created_at: new Date().toISOString() });
    this.save();
    this.onChange();
  }

  dismissRefused() {
    this.refused = [];
    this.save();
    this.onChange();
  }

  // Upload the queue, oldest first; `now` skips a backoff wait (a reconnect, a new report).
  async upload({ now = false } = {}) {
    if (!this.token()) return;
    // The browser knows it has no network: wait for its "online" event (app.js) instead of
    // trying. Chromium lets a request through a service worker even while its network is
    // emulated offline (Playwright issue 2311), so this check also keeps the offline tests
    // deterministic.
    if (navigator.onLine === false) return;
    if (this.uploading) {
      this.again = this.again || now;
      return;
    }
    if (!now && Date.now() < this.retryAt) return;
    this.uploading = true;
    this.again = false;
    clearTimeout(this.retryTimer);
    try {
      for (const report of await this.queue.all()) {
        const outcome = await this.send(report);
        if (outcome === "retry") return this.scheduleRetry();
        if (outcome === "refused") return this.onRefused();
        await this.load();
      }
      this.backoffMs = 0;
      this.retryAt = 0;
    } catch (err) {
      console.error("report upload failed", err);
      this.scheduleRetry();
    } finally {
      this.uploading = false;
      await this.load();
    }
    if (this.again) this.upload({ now: true });
  }

  // Send one report; return "sent", "dropped", "retry" or "refused".
  async send(report) {
    const form = new FormData();
    const { key, category, note, lat, lon, ts } = report;
    form.append("report", JSON.stringify({ key, category, note, lat, lon, ts }));
    report.photos.forEach((blob, i) => form.append("photo", blob, `photo-${i + 1}.jpg`));
    let response;
    try {
      response = await fetch("/api/v1/reports", {
        method: "POST",
        headers: { Authorization: `Bearer ${this.token()}` },
        body: form,
      });
    } catch {
      return "retry"; // offline, or the server is away
    }
    const body = await response.json().catch(() => ({}));
    this.uploads += 1;
    if (response.status === 401) return "refused";
    if (response.ok && body.ok) {
      await this.queue.remove(key);
      if (!this.mine.some((r) => r.key === key)) {
        this.mine.unshift({
          key,
          incident_id: body.incident_id,
          status: "open",
          category,
          note,
          created_at: new Date(ts).toISOString(),
        });
      }
      this.save();
      return "sent";
    }
    if (response.status === 400 || response.status === 413) {
      // Sending it again would be refused again: drop it and tell the person why.
      await this.queue.remove(key);
      this.refused.push({ key, note, error: body.error || `HTTP ${response.status}` });
      this.save();
      return "dropped";
    }
    return "retry"; // 503 (store unavailable), or anything else the server may get over
  }

  scheduleRetry() {
    this.backoffMs = Math.min(60000, this.backoffMs ? this.backoffMs * 2 : 2000);
    const waitMs = this.backoffMs * (0.75 + Math.random() * 0.5);
    this.retryAt = Date.now() + waitMs;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.upload(), waitMs);
  }

  async clear() {
    clearTimeout(this.retryTimer);
    await this.queue.clear();
    this.queued = [];
    this.mine = [];
    this.refused = [];
    localStorage.removeItem(MINE);
    localStorage.removeItem(REFUSED);
    this.onChange();
  }
}
